/* In-memory transport: a hub connecting several endpoints of one process, for tests and
 * single-process use. Deterministic and single-threaded: send() only queues; messages move
 * when the owner calls craft_mem_hub_pump(), in global send order.
 *
 * Thread safety: none. The hub, its endpoints and every callback run on one thread. */
#ifndef CRAFT_TRANSPORT_MEM_TRANSPORT_H
#define CRAFT_TRANSPORT_MEM_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

#include "transport/transport.h"

struct craft_mem_hub;

/* Creates an empty hub. msg_bytes_max: the largest message (CRAFT_ETOOBIG above it);
 * queue_bytes_max: the bytes one endpoint may have queued for one peer before send()
 * returns CRAFT_EBUSY. Returns NULL if out of memory or a limit is 0. */
struct craft_mem_hub *craft_mem_hub_create(uint32_t msg_bytes_max, size_t queue_bytes_max);

/* Destroys the hub and the messages it still holds. Every endpoint must be closed first. */
void craft_mem_hub_destroy(struct craft_mem_hub *hub);

/* Attaches endpoint `id` (nonzero, not attached already) to the hub; recv is called from
 * craft_mem_hub_pump with each message for it. Any attached id is a known peer; a message
 * for an id that is not attached at delivery time is dropped (as a dead node's would be).
 * Returns NULL on a duplicate id, id 0, a NULL recv, or out of memory.
 * Close it with craft_transport_close(); its queued outgoing messages still go out. */
struct craft_transport *craft_mem_transport_create(struct craft_mem_hub *hub, uint64_t id,
                                                   craft_transport_recv_fn recv, void *ctx);

/* Delivers the messages queued when the call starts, oldest first (messages sent by the
 * callbacks wait for the next pump). Returns the number delivered (dropped ones excluded). */
size_t craft_mem_hub_pump(struct craft_mem_hub *hub);

/* Pumps until nothing is queued or rounds_max rounds ran; returns the total delivered. */
size_t craft_mem_hub_pump_all(struct craft_mem_hub *hub, size_t rounds_max);

/* Messages queued in the hub, and messages dropped so far (receiver not attached). */
size_t craft_mem_hub_queued(const struct craft_mem_hub *hub);
uint64_t craft_mem_hub_dropped(const struct craft_mem_hub *hub);

#endif
