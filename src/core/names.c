#include "core/core.h"

/* Names as the trace and the scenario scripts print them; tables indexed by enum value so a
 * new enumerator without a name shows up as "UNKNOWN" rather than a wrong name. */

static const char *const role_names[] = {
    [CRAFT_FOLLOWER] = "FOLLOWER",
    [CRAFT_PRECANDIDATE] = "PRECANDIDATE",
    [CRAFT_CANDIDATE] = "CANDIDATE",
    [CRAFT_LEADER] = "LEADER",
};

static const char *const msg_type_names[CRAFT_MSG_TYPE_COUNT_] = {
    [CRAFT_MSG_APPEND] = "APPEND",
    [CRAFT_MSG_APPEND_RESP] = "APPEND_RESP",
    [CRAFT_MSG_HEARTBEAT] = "HEARTBEAT",
    [CRAFT_MSG_HEARTBEAT_RESP] = "HEARTBEAT_RESP",
    [CRAFT_MSG_VOTE] = "VOTE",
    [CRAFT_MSG_VOTE_RESP] = "VOTE_RESP",
    [CRAFT_MSG_PREVOTE] = "PREVOTE",
    [CRAFT_MSG_PREVOTE_RESP] = "PREVOTE_RESP",
    [CRAFT_MSG_SNAPSHOT] = "SNAPSHOT",
    [CRAFT_MSG_SNAPSHOT_RESP] = "SNAPSHOT_RESP",
    [CRAFT_MSG_TIMEOUT_NOW] = "TIMEOUT_NOW",
    [CRAFT_MSG_READ_INDEX] = "READ_INDEX",
    [CRAFT_MSG_READ_INDEX_RESP] = "READ_INDEX_RESP",
};

const char *craft_role_name(enum craft_role role)
{
    unsigned r = (unsigned)role;
    if (r >= sizeof(role_names) / sizeof(role_names[0]) || role_names[r] == NULL) {
        return "UNKNOWN";
    }
    return role_names[r];
}

const char *craft_msg_type_name(enum craft_msg_type type)
{
    unsigned t = (unsigned)type;
    if (t >= CRAFT_MSG_TYPE_COUNT_ || msg_type_names[t] == NULL) {
        return "UNKNOWN";
    }
    return msg_type_names[t];
}

bool craft_msg_type_is_response(enum craft_msg_type type)
{
    switch (type) {
    case CRAFT_MSG_APPEND_RESP:
    case CRAFT_MSG_HEARTBEAT_RESP:
    case CRAFT_MSG_VOTE_RESP:
    case CRAFT_MSG_PREVOTE_RESP:
    case CRAFT_MSG_SNAPSHOT_RESP:
    case CRAFT_MSG_READ_INDEX_RESP:
        return true;
    default:
        return false;
    }
}
