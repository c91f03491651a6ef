/* Key to slot, as Redis Cluster computes it (slots.h). The CRC is computed bit by bit from
 * its definition rather than from a copied table: a 256-entry table built once at first use
 * would be faster, but keys are short and this runs once per command. */
#include "shard/slots.h"

uint16_t craft_crc16(const uint8_t *p, size_t n)
{
    uint16_t crc = 0;
    for (size_t i = 0; i < n; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++) {
            crc = (crc & 0x8000u) ? (uint16_t)((crc << 1) ^ 0x1021u) : (uint16_t)(crc << 1);
        }
    }
    return crc;
}

uint16_t craft_key_slot(const uint8_t *key, size_t len)
{
    size_t open = 0;
    while (open < len && key[open] != '{') {
        open++;
    }
    if (open < len) {
        size_t close = open + 1;
        while (close < len && key[close] != '}') {
            close++;
        }
        /* "{}" or no closing brace: the whole key, as Redis does. */
        if (close < len && close > open + 1) {
            return craft_crc16(key + open + 1, close - open - 1) & (CRAFT_SLOTS - 1);
        }
    }
    return craft_crc16(key, len) & (CRAFT_SLOTS - 1);
}
