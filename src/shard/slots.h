/* Redis Cluster's key space: 16384 hash slots, a key's slot the CRC16 of the key (or of its
 * hash tag) modulo 16384, bit for bit as Redis computes it, so that `CLUSTER KEYSLOT` and
 * cluster-aware clients agree with craftkv on where a key lives (design:
 * docs/design/sharding.md). Pure functions: any thread, no allocation. */
#ifndef CRAFT_SHARD_SLOTS_H
#define CRAFT_SHARD_SLOTS_H

#include <stddef.h>
#include <stdint.h>

/* The number of slots, as Redis Cluster has it. */
#define CRAFT_SLOTS 16384u

/* CRC16-CCITT (XMODEM: polynomial 0x1021, initial value 0, no reflection, no final xor),
 * the checksum Redis Cluster hashes keys with. crc16("123456789") == 0x31C3. */
uint16_t craft_crc16(const uint8_t *p, size_t n);

/* The slot of key[0..len): if the key holds a '{' followed later by a '}' with at least
 * one byte between them, only the bytes between the first '{' and the first '}' after it
 * are hashed (the hash tag: "{user1000}.following" and "{user1000}.followers" share a
 * slot); otherwise the whole key. Always < CRAFT_SLOTS. */
uint16_t craft_key_slot(const uint8_t *key, size_t len);

#endif
