/*
 * multicall: taking a system.multicall apart and putting its answer together.
 *
 * system.multicall is the de-facto XML-RPC extension for batching: the
 * client (Python's xmlrpc.client.MultiCall, for one) sends a single call
 *
 *   system.multicall([{"methodName": m, "params": [...]}, ...])
 *
 * and gets back one array holding, for each call in order, either a
 * one-element array [result] or a fault struct {"faultCode": int,
 * "faultString": string}. When the calls of one batch route to different
 * targets, the proxy splits the batch, sends each target its own smaller
 * multicall, and stitches the answers back into the client's order.
 *
 * This module holds the parts of that which need no I/O and no state: reading
 * the calls out of a parsed request, building the batch for one target,
 * splitting one target's answer into per-call responses, and writing the
 * combined answer. Routing and sending belong to the caller.
 *
 * Everything returned (values, strings, arrays) lives in the caller's arena
 * and goes with it; nothing is freed one by one. Parsed trees handed in are
 * only read, never relinked.
 */
#ifndef STRANGLER_ADAPTERS_MULTICALL_H
#define STRANGLER_ADAPTERS_MULTICALL_H

#include "common/buf.h"
#include "common/mem.h"
#include "legacy-adapters/xmlrpc.h"

#include <stddef.h>

/*
 * One call inside a system.multicall, pointing into the parsed request.
 * Invariant: method is non-empty, NUL-terminated and holds no NUL before
 * method_len; params is an XR_ARRAY. params is the "params" member node of
 * the request's tree (its ->next and ->name belong to that struct), so treat
 * it as read-only: never append to it or put it into another list.
 */
struct mc_call {
    const char *method;
    size_t method_len;
    struct xr_value *params;
};

/* Returns nonzero when call->method is exactly "system.multicall" (method
 * names are case-sensitive), else 0. */
int mc_is_multicall(const struct xr_call *call);

/*
 * Reads the calls of a parsed system.multicall. `call` must have been parsed
 * with XR_PARSE_FULL; with params NULL this returns -1 and XR_FAULT_INTERNAL.
 *
 * The valid shape is exactly one parameter, an XR_ARRAY, each element an
 * XR_STRUCT with a member "methodName" (a non-empty XR_STRING) and a member
 * "params" (an XR_ARRAY); other members are ignored, and with duplicates the
 * first one counts. An empty array is valid.
 *
 * Returns 0 and sets *calls to an arena array of *n entries (NULL when *n is
 * 0), in request order. Returns -1 when the shape is wrong, leaving *calls
 * and *n untouched, with err->code XR_FAULT_INVALID_PARAMS and a message
 * naming the problem and the 0-based index of the call, e.g.
 * "system.multicall: call 2: methodName is missing".
 */
int mc_read_calls(struct arena *a, const struct xr_call *call, struct mc_call **calls, size_t *n,
                  struct xr_error *err);

/*
 * Builds the params of a system.multicall carrying calls[idx[0]], ...,
 * calls[idx[k-1]] in that order: an XR_ARRAY holding one XR_ARRAY of
 * {methodName, params} structs, ready for xr_write_call(). Every idx[i] must
 * be a valid index into calls; k may be 0 (one empty array).
 *
 * The structs and their member nodes are new, but the values inside each
 * call's params are shared with the original tree, which stays unchanged.
 * Write the result out; do not append to it or to the arrays inside.
 * Returns the new value; all of it is the arena's.
 */
struct xr_value *mc_build_params(struct arena *a, const struct mc_call *calls, const size_t *idx,
                                 size_t k);

/*
 * Splits the parsed answer `resp` to a system.multicall that carried k calls
 * into k per-call responses, written to out[0..k-1] (the caller's array):
 *
 *   - a fault response: every call gets that fault;
 *   - a result that is an XR_ARRAY of exactly k elements: element i that is a
 *     one-element array [value] makes out[i] that result; a fault struct
 *     (as xr_fault_read() reads it) makes out[i] that fault; anything else
 *     makes out[i] fault XR_FAULT_INTERNAL, "system.multicall: answer i is
 *     neither [value] nor a fault (...)" with what it was in parentheses;
 *   - any other result (not an array, wrong length): every call gets fault
 *     XR_FAULT_INTERNAL saying what was wrong, e.g.
 *     "system.multicall: 2 answers for 3 calls".
 *
 * `who` (e.g. "route stock-read: upstream legacy") prefixes the messages of
 * the XR_FAULT_INTERNAL faults made here, so the client can tell which part
 * of the batch went wrong; NULL or "" means no prefix. Results and fault
 * strings point into resp's tree or into the arena. Returns nothing: every
 * outcome is expressed in out.
 */
void mc_split_answers(struct arena *a, const struct xr_response *resp, size_t k, const char *who,
                      struct xr_response *out);

/*
 * Appends to `out` the complete <methodResponse> of a system.multicall
 * answered by answers[0..n-1], in that order: each result wrapped in a
 * one-element array (a NULL result as [nil], as xr_write_response() writes
 * a missing result), each fault as a {faultCode, faultString} struct. The
 * value tree is built in the arena; the answers' values are only read.
 */
void mc_write_response(struct arena *a, struct buf *out, const struct xr_response *answers,
                       size_t n);

#endif
