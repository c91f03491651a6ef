/* craft: the types the public API shares with the library's internals (the protocol core
 * declares its functions over them): error codes, node ids, roles, cluster configurations
 * and a peer's replication progress. Self-contained: compiles with -Iinclude alone, as
 * every public header does. */
#ifndef CRAFT_BASE_H
#define CRAFT_BASE_H

#include <stdbool.h>
#include <stdint.h>

/* Operating errors: one enum for the whole library, never mixed with errno. Functions
 * return 0 (CRAFT_OK) or one of these. */
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

/* Node ids are non-zero; 0 means "none". */
#define CRAFT_NONE 0ULL
/* The largest number of nodes (voters, outgoing voters and learners together) a
 * configuration can name. */
#define CRAFT_CONF_NODES_MAX 32

enum craft_role {
    CRAFT_FOLLOWER = 1,
    CRAFT_PRECANDIDATE,
    CRAFT_CANDIDATE,
    CRAFT_LEADER,
};
/* "FOLLOWER", "PRECANDIDATE", "CANDIDATE", "LEADER" ("UNKNOWN" otherwise): a static string. */
const char *craft_role_name(enum craft_role role);

/* A cluster configuration, ready for joint consensus: while `n_voters_outgoing` is non-zero
 * the configuration is joint and decisions need a majority of `voters` and a majority of
 * `voters_outgoing`. Learners receive the log but never vote or count. Ids are unique within
 * each list; a node is a voter (incoming or outgoing) or a learner, never both.
 * `learners_next` (joint only) names outgoing voters that become learners when the joint
 * configuration is left (a demotion inside a joint change); they are in voters_outgoing
 * and in neither voters nor learners. */
struct craft_conf {
    uint32_t n_voters;
    uint32_t n_voters_outgoing;
    uint32_t n_learners;
    uint32_t n_learners_next;
    uint64_t voters[CRAFT_CONF_NODES_MAX];
    uint64_t voters_outgoing[CRAFT_CONF_NODES_MAX];
    uint64_t learners[CRAFT_CONF_NODES_MAX];
    uint64_t learners_next[CRAFT_CONF_NODES_MAX];
};

/* One peer's replication state, as the leader sees it. */
struct craft_peer_status {
    uint64_t id;
    bool is_learner;
    uint8_t state; /* 1 probe, 2 replicate, 3 snapshot */
    uint64_t match, next;
    bool recent_active;
    uint32_t inflight_msgs;
    uint64_t inflight_bytes;
};

#endif
