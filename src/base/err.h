/* Operating errors: one enum for the whole library, never mixed with errno. */
#ifndef CRAFT_BASE_ERR_H
#define CRAFT_BASE_ERR_H

enum craft_err {
    CRAFT_OK = 0,
    CRAFT_ENOTLEADER,   /* this node is not the leader */
    CRAFT_EBUSY,        /* a named limit is reached; retry later */
    CRAFT_EINVAL,       /* an argument is out of its documented range */
    CRAFT_ENOMEM,       /* an allocation failed */
    CRAFT_EMALFORMED,   /* bytes that do not decode: bad frame, bad record */
    CRAFT_ETOOBIG,      /* a size exceeds its *_max limit */
    CRAFT_EVERSION,     /* an encoding version this build does not know */
    CRAFT_EIO,          /* the operating system reported an I/O error */
    CRAFT_ENOSPACE,     /* the disk is full */
    CRAFT_ECORRUPT,     /* stored data fails its checksum */
    CRAFT_ESHUTDOWN,    /* the node is shutting down or has failed */
    CRAFT_ETIMEOUT,     /* the operation did not complete in time */
    CRAFT_EUNKNOWNPEER, /* a node id that is not part of the cluster */
    CRAFT_ESTALE,       /* stale input: an old term, an old snapshot */
    CRAFT_ETRANSFER,    /* a leadership transfer is in progress */
    CRAFT_ECONFCHANGE,  /* a configuration change is already in progress */
    CRAFT_ENOTFOUND,    /* the requested object does not exist */
    CRAFT_ERR_COUNT_
};

/* Returns a static, human-readable string for err; never NULL. */
const char *craft_strerror(int err);

#endif
