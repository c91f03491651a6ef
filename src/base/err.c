#include "base/err.h"

static const char *const err_strings[CRAFT_ERR_COUNT_] = {
    [CRAFT_OK] = "success",
    [CRAFT_ENOTLEADER] = "not the leader",
    [CRAFT_EBUSY] = "a limit is reached, retry later",
    [CRAFT_EINVAL] = "invalid argument",
    [CRAFT_ENOMEM] = "out of memory",
    [CRAFT_EMALFORMED] = "malformed data",
    [CRAFT_ETOOBIG] = "size exceeds its limit",
    [CRAFT_EVERSION] = "unknown encoding version",
    [CRAFT_EIO] = "I/O error",
    [CRAFT_ENOSPACE] = "no space left on device",
    [CRAFT_ECORRUPT] = "stored data is corrupt",
    [CRAFT_ESHUTDOWN] = "shut down or failed",
    [CRAFT_ETIMEOUT] = "timed out",
    [CRAFT_EUNKNOWNPEER] = "unknown peer",
    [CRAFT_ESTALE] = "stale input",
    [CRAFT_ETRANSFER] = "leadership transfer in progress",
    [CRAFT_ECONFCHANGE] = "a configuration change is in progress",
    [CRAFT_ENOTFOUND] = "not found",
};

const char *craft_strerror(int err)
{
    if (err < 0 || err >= CRAFT_ERR_COUNT_ || err_strings[err] == 0) {
        return "unknown error";
    }
    return err_strings[err];
}
