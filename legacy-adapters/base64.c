#include "legacy-adapters/base64.h"

#include <stdint.h>

static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

void base64_encode(struct buf *out, const void *data, size_t len)
{
    const unsigned char *p = data;
    size_t i = 0;

    /* Reserve once: 4 output bytes for every 3 input bytes, rounded up. */
    buf_reserve(out, (len + 2) / 3 * 4);
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
        char quad[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63], alphabet[(v >> 6) & 63],
                        alphabet[v & 63]};
        buf_append(out, quad, 4);
    }
    if (i < len) {
        uint32_t v = (uint32_t)p[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)p[i + 1] << 8;
        char quad[4] = {alphabet[v >> 18], alphabet[(v >> 12) & 63],
                        i + 1 < len ? alphabet[(v >> 6) & 63] : '=', '='};
        buf_append(out, quad, 4);
    }
}

/* The sextet a character stands for, -1 for characters outside the alphabet. */
static int sextet(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '+')
        return 62;
    if (c == '/')
        return 63;
    return -1;
}

static int is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * A final group of n sextets followed by `pads` '=' is valid when it carries
 * at least one whole byte (n >= 2) and is padded to four. Padding is
 * required (RFC 2045, which XML-RPC's base64 follows): the legacy a client
 * talks to refuses "AQ" (Python's binascii: "Incorrect padding"), and a call
 * the legacy would refuse must not run on a new service.
 */
static int tail_is_valid(unsigned n, unsigned pads)
{
    if (n == 0)
        return pads == 0;
    return n >= 2 && n + pads == 4;
}

int base64_decode(struct arena *a, const char *text, size_t len, const char **out, size_t *out_len)
{
    const unsigned char *s = (const unsigned char *)text;
    char *bytes = arena_alloc(a, len / 4 * 3 + 3 + 1);
    size_t n = 0;
    uint32_t acc = 0;
    unsigned have = 0, pads = 0;

    for (size_t i = 0; i < len; i++) {
        if (is_space(s[i]))
            continue;
        if (s[i] == '=') {
            pads++;
            continue;
        }
        int v = sextet(s[i]);
        if (v < 0 || pads > 0) /* data after padding is corrupt, not a new group */
            return -1;
        acc = acc << 6 | (uint32_t)v;
        if (++have == 4) {
            bytes[n++] = (char)(acc >> 16);
            bytes[n++] = (char)(acc >> 8);
            bytes[n++] = (char)acc;
            acc = 0;
            have = 0;
        }
    }
    if (!tail_is_valid(have, pads))
        return -1;
    if (have >= 2) {
        acc <<= 6 * (4 - have);
        bytes[n++] = (char)(acc >> 16);
        if (have == 3)
            bytes[n++] = (char)(acc >> 8);
    }
    bytes[n] = '\0';
    *out = bytes;
    *out_len = n;
    return 0;
}
