/*
 * darklaunch: the decisions of shadow, canary and fallback routes (issue 6)
 * that need no I/O, kept apart so that they can be tested on their own.
 *
 *   - Which side of a canary a call goes to: a random share of calls, or,
 *     with sticky=param:N or sticky=header:NAME, a share of the keys, so
 *     that one customer always lands on the same side. The key's hash is
 *     fixed (no per-process seed): every proxy instance and every restart
 *     puts a key in the same bucket, which is what makes it sticky across
 *     a fleet.
 *   - Whether an answer from a new side counts as one: the rollback guard
 *     counts "no answer, or a fault the proxy made because the answer was
 *     unusable" against the new side, but a fault the service sent itself
 *     is a legitimate answer.
 *
 * Everything here is pure and reentrant; any thread may call it.
 */
#ifndef STRANGLER_PROXY_DARKLAUNCH_H
#define STRANGLER_PROXY_DARKLAUNCH_H

#include "common/buf.h"
#include "legacy-adapters/xmlrpc.h"
#include "proxy/config.h"
#include "proxy/http.h"

#include <stdint.h>

/* Shares are in basis points: 10000 is every call. */
#define DARKLAUNCH_BUCKETS 10000

/*
 * Appends the canonical text of a sticky parameter's value to out: a
 * string's bytes (an untyped <value> is a string), an int's decimal digits
 * (so "42" and 42 are one key: a customer id may come as either), and for
 * every other type its XML-RPC text as xr_write_value() writes it, which
 * is the same for equal values whatever the client's spelling (<i4> or
 * <int>, whitespace, the order of nothing). NULL appends nothing.
 */
void darklaunch_value_key(const struct xr_value *v, struct buf *out);

/*
 * The 64-bit hash of a sticky key: FNV-1a over its bytes, then the fmix64
 * finaliser of MurmurHash3 so that the low digits, which choose the
 * bucket, depend on every byte. Fixed on purpose: no seed, no dependence
 * on the platform's byte order. Not meant to resist chosen keys; it only
 * splits traffic.
 */
uint64_t darklaunch_hash(const char *key, size_t len);

/* Whether a number (a key's hash, or a random draw) falls in the share:
 * n % DARKLAUNCH_BUCKETS < share_bp. 0 is never, 10000 always. */
int darklaunch_in_share(uint64_t n, unsigned share_bp);

/*
 * Appends the sticky key of a call on route r (sticky=param:N: the Nth
 * parameter's canonical text; sticky=header:NAME: the first such header's
 * value, as it came) to out and returns 0; returns -1 when r is not
 * sticky or the call has no such parameter or header. params may be NULL
 * (not parsed); headers may be NULL.
 */
int darklaunch_sticky_key(const struct route *r, const struct xr_value *params,
                          const struct http_message *headers, struct buf *out);

/*
 * Whether a call on canary route r goes to its new side (r->second).
 * Sticky: by its key's hash, and to the other side (stable too) when it
 * has no key, unless the share is 100 % (every call). Otherwise by `draw`,
 * a random number the caller took (worker_random()).
 */
int darklaunch_canary_new(const struct route *r, const struct xr_value *params,
                          const struct http_message *headers, uint64_t draw);

/*
 * Whether answer r, from upstream `upstream` on route `route`, is a fault
 * the proxy made rather than one the service sent: an interop code
 * (-32768 to -32000) and a message that starts "route ROUTE: upstream
 * UPSTREAM: ", as every fault the adapters (adapter_fault()) and the
 * pipeline make for an upstream does. A service could in principle send
 * such a fault itself; it would then be judged unusable, which is the
 * safe side of the mistake.
 */
int darklaunch_made_by_proxy(const struct xr_response *r, const char *route, const char *upstream);

#endif
