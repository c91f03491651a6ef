/* The transport port: moves opaque, already-encoded messages between nodes (DESIGN decision
 * 7: two implementations, TCP in tcp_transport.h and in-memory in mem_transport.h).
 *
 * A message is a byte string addressed to a node (a process) and a Raft group in it; the
 * transport carries the group id beside the message and never looks inside the message
 * (src/codec encodes them). One transport serves every group its process hosts.
 * Delivery is best effort and in order per (sender, receiver) pair: a message may be lost
 * (a broken connection, a full queue, a restarted peer) but never duplicated, reordered or
 * altered. Raft retries what is lost. */
#ifndef CRAFT_TRANSPORT_TRANSPORT_H
#define CRAFT_TRANSPORT_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

/* Called with each message received from node `from` for Raft group `group`, on the
 * transport's own thread (the TCP loop thread; the caller of craft_mem_hub_pump for the
 * in-memory one). bytes is borrowed for the call only. The callback must not call close
 * on its own transport. */
typedef void (*craft_transport_recv_fn)(void *ctx, uint64_t from, uint64_t group,
                                        const uint8_t *bytes, size_t len);

/* Optional log sink for operational lines (refused handshakes, bad frames, reconnects):
 * one line without a trailing newline, called on the transport's thread. NULL: stderr. */
typedef void (*craft_transport_log_fn)(void *ctx, const char *line);

/* One row of the peer address table: node id -> host:port. host is a numeric address
 * ("127.0.0.1", "::1"): the transport never resolves names, since a DNS lookup blocks. */
#define CRAFT_HOST_BYTES_MAX 64
struct craft_peer_addr {
    uint64_t id;
    char host[CRAFT_HOST_BYTES_MAX];
    uint16_t port; /* 0: address not known yet (see craft_tcp_transport_set_peer) */
};

struct craft_transport {
    /* Queues a copy of bytes[0..len), a message of group `group`, for node `to` and
     * returns at once (never blocks on the network). Errors: CRAFT_EUNKNOWNPEER (to is not in the peer table, or is this
     * node), CRAFT_EINVAL (len == 0), CRAFT_ETOOBIG (len > the frame limit), CRAFT_EBUSY
     * (the queue for `to` would exceed its *_max bytes; retry later), CRAFT_ENOMEM,
     * CRAFT_ESHUTDOWN. Thread safety: see each implementation. */
    int (*send)(struct craft_transport *t, uint64_t to, uint64_t group, const uint8_t *bytes,
                size_t len);
    /* Stops the transport and frees it; queued and in-flight messages are dropped. After
     * it returns no callback runs. t is invalid afterwards. */
    void (*close)(struct craft_transport *t);
};

static inline int craft_transport_send(struct craft_transport *t, uint64_t to, uint64_t group,
                                       const uint8_t *bytes, size_t len)
{
    return t->send(t, to, group, bytes, len);
}

static inline void craft_transport_close(struct craft_transport *t)
{
    t->close(t);
}

#endif
