#include "common/ids.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

/*
 * xoshiro256** (Blackman and Vigna): fast, 256 bits of state, and plenty for
 * 122 random bits an id. The state is per thread so the request path takes no
 * lock; each thread seeds itself once from getrandom(2).
 */
static _Thread_local uint64_t rng_state[4];
static _Thread_local int rng_seeded;

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t rng_next(void)
{
    uint64_t *s = rng_state;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static void rng_seed(void)
{
    if (getrandom(rng_state, sizeof(rng_state), 0) != (ssize_t)sizeof(rng_state)) {
        /* No entropy pool (very old kernel, seccomp): fall back to values
         * that still differ between threads and processes. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        rng_state[0] = (uint64_t)ts.tv_nsec ^ ((uint64_t)ts.tv_sec << 32);
        rng_state[1] = (uint64_t)getpid() * 0x9E3779B97F4A7C15u;
        rng_state[2] = (uint64_t)(uintptr_t)&rng_state;
        rng_state[3] = 0x2545F4914F6CDD1Du;
    }
    rng_seeded = 1;
}

void ids_new_uuid(char *out)
{
    static const char hex[] = "0123456789abcdef";
    if (!rng_seeded)
        rng_seed();

    unsigned char bytes[16];
    uint64_t a = rng_next(), b = rng_next();
    memcpy(bytes, &a, 8);
    memcpy(bytes + 8, &b, 8);
    bytes[6] = (unsigned char)((bytes[6] & 0x0f) | 0x40); /* version 4 */
    bytes[8] = (unsigned char)((bytes[8] & 0x3f) | 0x80); /* RFC 4122 variant */

    size_t o = 0;
    for (int i = 0; i < 16; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10)
            out[o++] = '-';
        out[o++] = hex[bytes[i] >> 4];
        out[o++] = hex[bytes[i] & 0x0f];
    }
    out[o] = '\0';
}
