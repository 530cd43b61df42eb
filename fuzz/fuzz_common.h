/*
 * fuzz_common: what the libFuzzer drivers in fuzz/ share.
 *
 * A driver checks an invariant with FUZZ_CHECK(): when it does not hold,
 * the driver prints which one and aborts, and libFuzzer saves the input
 * as a crash. Invariants are only those the module's header promises.
 */
#ifndef STRANGLER_FUZZ_COMMON_H
#define STRANGLER_FUZZ_COMMON_H

#include "legacy-adapters/xmlrpc.h"
#include "legacy-adapters/xrdiff.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: invariant failed: %s: ", __FILE__, __LINE__, #cond);           \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

/* Whether two responses hold the same answer, by xrdiff's rules (exact
 * doubles, NaN equal to NaN, base64 by its bytes). Prints the first
 * difference when they do not. */
static inline int fuzz_same_response(const struct xr_response *a, const struct xr_response *b)
{
    struct xrdiff_result res;
    int differ = xrdiff_compare(a, b, NULL, &res);
    if (differ && res.npaths > 0)
        fprintf(stderr, "first difference: %s\n", res.paths[0]);
    xrdiff_result_dispose(&res);
    return !differ;
}

/* Whether two values are the same, as the results of two responses. */
static inline int fuzz_same_value(const struct xr_value *a, const struct xr_value *b)
{
    struct xr_response ra = {0}, rb = {0};
    ra.result = (struct xr_value *)a;
    rb.result = (struct xr_value *)b;
    return fuzz_same_response(&ra, &rb);
}

#endif
