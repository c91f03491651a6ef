/* TCP transport (design: docs/design/transport.md).
 *
 * One thread per transport runs a small epoll loop over non-blocking sockets. Each node
 * keeps one outbound connection per peer, used only to send, and accepts inbound
 * connections, used only to receive: one connection per peer and direction. A connection
 * starts with a handshake {magic, version, cluster id, from, to}; an inbound connection
 * from another cluster, an unknown node or for another target is refused (closed, with a
 * log line). Messages travel as length-prefixed frames of at most frame_bytes_max bytes; a
 * bad frame closes that connection only. Writes are batched: each peer's queued frames go
 * out in as few write() calls as the socket allows. A lost outbound connection is retried
 * with capped exponential backoff plus seeded jitter; frames that were queued but not yet
 * handed to the lost socket are kept, a partially written batch is dropped (Raft retries).
 *
 * Threads: by default the transport runs its loop on a thread of its own. A driven
 * transport (config.driven) has no thread: its owner, one thread of the application,
 * runs the loop by calling craft_tcp_transport_poll and craft_tcp_transport_flush, so
 * frames are read and written on the thread that steps and produces them, with no
 * hand-off (the runtime's raft loop does this: docs/design/runtime.md).
 *
 * Thread safety: send() and craft_tcp_transport_set_peer() may be called from any thread;
 * close() from any thread but the loop thread (not from a callback), once, after every
 * other call on the transport has returned. Callbacks run on the loop thread (a driven
 * transport's owner, inside craft_tcp_transport_poll). */
#ifndef CRAFT_TRANSPORT_TCP_TRANSPORT_H
#define CRAFT_TRANSPORT_TCP_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "transport/transport.h"

struct craft_tcp_config {
    uint64_t cluster_id;
    uint64_t self_id; /* nonzero */
    /* The peer table, copied: every node this one sends to or accepts from (an entry for
     * self_id is ignored). Port 0 means the address is not known yet. */
    const struct craft_peer_addr *peers;
    size_t n_peers;
    /* Listening address: numeric host ("127.0.0.1"; NULL or "" for any IPv4 address)
     * and port (0: an ephemeral port, read it back with craft_tcp_transport_port). */
    const char *listen_host;
    uint16_t listen_port;
    uint32_t frame_bytes_max;     /* largest message; 0: 64 MiB */
    size_t peer_queue_bytes_max;  /* bytes queued per peer before send() says EBUSY;
                                   * 0: 64 MiB. A peer holds at most twice this (queue +
                                   * the batch being written). */
    uint32_t backoff_min_ms;      /* first reconnection delay; 0: 50 ms */
    uint32_t backoff_max_ms;      /* cap of the doubling delay; 0: 2000 ms */
    uint64_t seed;                /* seeds the jitter PRNG */
    craft_transport_recv_fn recv; /* required */
    void *recv_ctx;
    craft_transport_log_fn log; /* optional; NULL: standard error */
    void *log_ctx;
    bool driven; /* true: no thread of its own; the owner calls craft_tcp_transport_poll */
};

/* Binds, listens and starts the loop thread. Returns the transport, or NULL and sets *err:
 * CRAFT_EINVAL (a bad config: no recv, self_id 0, a non-numeric host, duplicate peer ids),
 * CRAFT_EIO (socket, bind or listen failed, e.g. the port is in use), CRAFT_ENOMEM. */
struct craft_transport *craft_tcp_transport_create(const struct craft_tcp_config *cfg,
                                                   int *err);

/* Driven transports only, on the owner thread (the same thread every time): starts due
 * connection attempts, writes queued frames, then waits up to timeout_ms (0: not at all,
 * -1: until something happens) for socket events or craft_tcp_transport_wake, and handles
 * them; recv and log callbacks run inside this call. Never blocks longer than timeout_ms
 * (a connection attempt due sooner shortens the wait). */
void craft_tcp_transport_poll(struct craft_transport *t, int timeout_ms);

/* Driven transports only, on the owner thread: writes every peer's queued frames now, as
 * far as the sockets take them without blocking (the rest goes when they drain, from a
 * later poll). Sends made on the owner thread do not wake the loop: the owner calls this
 * after each round of its own, so one round's messages leave in one write per peer. */
void craft_tcp_transport_flush(struct craft_transport *t);

/* Any thread: makes the owner's craft_tcp_transport_poll in progress (or its next one)
 * return at once. Async-signal-unsafe; never blocks. */
void craft_tcp_transport_wake(struct craft_transport *t);

/* The port the transport listens on (useful after listen_port 0). */
uint16_t craft_tcp_transport_port(const struct craft_transport *t);

/* Sets the address of peer `id` (host numeric), adding the peer if it is not in the table
 * (a server added to the cluster; up to 64 additions per transport). For a known peer the
 * current outbound connection, if any, is kept until it breaks; the next attempt uses the
 * new address and starts without waiting for the backoff. id == self_id: ignored.
 * Errors: CRAFT_EINVAL (id 0, a non-numeric host), CRAFT_EBUSY (no room to add). */
int craft_tcp_transport_set_peer(struct craft_transport *t, uint64_t id, const char *host,
                                 uint16_t port);

#endif
