/* The host's own messages (docs/design/multiraft.md, "Coalesced heartbeats and
 * quiescence"): what hosts tell each other about processes and quiet groups, outside the
 * Raft messages of any group. They travel in ordinary frames (transport.md), told apart
 * from Raft messages by their first byte, HOST_MSG_MAGIC, which no Raft message starts
 * with (the message codec's version byte is 1):
 *
 *   PING     frame group HOST_MSG_GROUP   u8 magic, u8 kind = 1, u64 incarnation
 *            a process heartbeat: the sender is alive, and since when (a random number
 *            drawn when its host started: a new one says it restarted).
 *   QUIESCE  frame group g                u8 magic, u8 kind = 2, u64 term, u64 index
 *            g's leader (the sender) in term, with every entry through index, the last,
 *            committed and replicated everywhere, stops ticking g; so may the receiver.
 *   WAKE     frame group g                u8 magic, u8 kind = 3, u64 term
 *            the sender's replica of g has work, or refused to quiesce: tick g again.
 *
 * Little-endian, exact lengths. Pure: no I/O, no allocation. */
#ifndef CRAFT_RUNTIME_HOST_MSG_H
#define CRAFT_RUNTIME_HOST_MSG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define HOST_MSG_MAGIC 0xC7u
/* The frame group of messages for the host itself; no Raft group may use it. */
#define HOST_MSG_GROUP UINT64_MAX
/* The longest host message. */
#define HOST_MSG_BYTES_MAX 18u

enum host_msg_kind { HOST_MSG_PING = 1, HOST_MSG_QUIESCE = 2, HOST_MSG_WAKE = 3 };

struct host_msg {
    uint8_t kind;
    uint64_t term;  /* QUIESCE, WAKE; PING: the incarnation */
    uint64_t index; /* QUIESCE */
};

/* Whether a frame's body is a host message (and not a Raft message). */
static inline bool host_msg_is(const uint8_t *buf, size_t len)
{
    return len > 0 && buf[0] == HOST_MSG_MAGIC;
}

/* Encodes m into buf (HOST_MSG_BYTES_MAX bytes); returns the length. */
size_t host_msg_encode(const struct host_msg *m, uint8_t *buf);

/* Decodes exactly len bytes into *m. Returns false (m unspecified) for anything but a
 * well-formed message of a known kind. */
bool host_msg_decode(const uint8_t *buf, size_t len, struct host_msg *m);

#endif
