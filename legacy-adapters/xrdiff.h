/*
 * xrdiff: where two XML-RPC answers differ.
 *
 * A shadowed call goes to both services: the client gets the legacy's
 * answer, and the new service (the candidate) gets a copy of the call. Once
 * the client has been answered, the worker compares the two answers here;
 * every difference becomes one path in a mismatch event, so a migration
 * team sees exactly which field the new service gets wrong.
 *
 * The comparison is pure: it reads the two parsed trees and owns nothing
 * but the result it fills in. It is reentrant, keeps no state between
 * calls, and may run on any thread.
 *
 * What counts as equal (legacy on the left, candidate on the right):
 *   - Types as the parser already normalises them: <int>, <i4> and <i8>
 *     are one integer type compared by value (so 5 as <i4> equals 5 as
 *     <i8>); <string> and an untyped <value> are one string type. Any
 *     other difference of type is a difference, int vs double included
 *     (a client sees 5 and 5.0 as different types), and so is nil vs
 *     anything.
 *   - Strings and member names compare byte for byte; base64 compares the
 *     decoded bytes (line breaks in the encoding do not matter);
 *     dateTime.iso8601 compares its text exactly as sent, because the
 *     legacy's clients parse it with a fixed format (Python's
 *     "%Y%m%dT%H:%M:%S"), so "2024-01-02T03:04:05" for
 *     "20240102T03:04:05" breaks them.
 *   - Doubles: see struct xrdiff_options.tolerance.
 *   - Structs compare member by member by name; their order is ignored.
 *     A name that occurs more than once is paired by occurrence: the
 *     first "a" on one side with the first "a" on the other, the second
 *     with the second, and so on. Paths do not number occurrences, so two
 *     entries may name the same path when a struct repeats a name.
 *   - Arrays compare element by element. A difference in length is one
 *     entry at the array's path, plus the differences among the elements
 *     both sides have; the extra elements are not listed one by one.
 *   - A result against a fault is one difference at the root. Two faults
 *     compare their faultCode and faultString.
 *
 * Paths. A path names a place in an answer, and reads:
 *   - a root: `result` (the response's one value) or `fault`; a fault has
 *     the two members `fault.faultCode` and `fault.faultString`;
 *   - then, for each step down: `.name` for a struct member whose name is
 *     non-empty and made only of ASCII letters, digits, '_' and '-' and
 *     of bytes from 0x80 up (UTF-8 letters); `["name"]` for any other
 *     name, inside which '"' is written `\"`, '\' is `\\`, and a byte
 *     below 0x20 or 0x7f is `\xHH` (two lowercase hex digits); every other
 *     byte stands for itself. `[N]` is array element N, from 0.
 * E.g. `result.items[2].sku`, `result[0]`, `result["a.b"]`,
 * `result["say \"hi\""].x`, `result[""]`. A reported path spells each
 * name in exactly one way, so it is unambiguous, and two reported paths
 * are equal exactly when their text is.
 *
 * Ignore paths use the same syntax, read more leniently: `[]` stands for
 * any element of an array (`result.items[].price`), any name may be
 * quoted (`result["qty"]` is `result.qty`), and `\xHH` (either case) may
 * spell any byte inside a quoted name, so a name that holds characters
 * routes.conf gives a meaning to (space, comma) can still be written:
 * `result["unit\x20price"]`. An ignore path
 * leaves out the place it names and everything below it. A reported path
 * is itself a valid ignore path. xrdiff_check_path() validates one.
 */
#ifndef STRANGLER_ADAPTERS_XRDIFF_H
#define STRANGLER_ADAPTERS_XRDIFF_H

#include "legacy-adapters/xmlrpc.h"

#include <stddef.h>

/* Levels of nesting (value inside value) that xrdiff_compare() descends
 * through. The parser's depth limit keeps real answers far below it; a
 * pair of containers deeper than this is reported, not compared. */
#define XRDIFF_MAX_DEPTH 256

/* What xrdiff_compare() collects when options leave max_paths at 0. */
#define XRDIFF_DEFAULT_MAX_PATHS 32

/* How to compare. Read only; all zero (or a NULL pointer) is exact
 * comparison, nothing ignored, at most XRDIFF_DEFAULT_MAX_PATHS paths. */
struct xrdiff_options {
    /*
     * Doubles a and b are equal when a == b, or when both are finite and
     *     |a - b| <= tolerance * max(1, |a|, |b|)
     * that is, an absolute tolerance for values up to 1 in size and a
     * relative one above. 0 (or a negative or NaN tolerance) is exact
     * comparison. Under any tolerance, -0.0 equals 0.0 (IEEE 754 equality;
     * a JSON service rarely keeps the sign of a zero, and no client can
     * tell them apart by ==); an infinity equals only the same infinity;
     * and NaN equals NaN: XML-RPC has no NaN, but Python's xmlrpc.client
     * writes one as "nan" and the parser reads it, and two services that
     * both say nan agree.
     */
    double tolerance;
    /* Paths to leave out, NULL-terminated, in the syntax above: e.g.
     * "result.updated_at", "result.items[].price", "fault.faultString".
     * NULL is none. Check each with xrdiff_check_path() when reading the
     * configuration: a path that does not parse matches nothing. The
     * root difference, a result against a fault, is never ignored. */
    const char *const *ignore;
    /* Stop collecting paths after this many; counting goes on. 0 means
     * XRDIFF_DEFAULT_MAX_PATHS. */
    size_t max_paths;
};

/*
 * The differences found. Each entry in paths is
 *     PATH ": " WHAT
 * where PATH is in the syntax above (and so holds no ": " outside quotes)
 * and WHAT is one of
 *     value differs                  same type, another value
 *     type LTYPE vs CTYPE            e.g. "type int vs string"
 *     missing in candidate           a struct member only the legacy has
 *     only in candidate              a struct member only the candidate has
 *     length N vs M                  array lengths
 *     result vs fault                at `result`: the candidate faulted
 *     fault vs result                at `fault`: only the legacy faulted
 *     deeper than 256 levels, not compared
 * with the legacy's side always first. Type names are xr_type_name()'s
 * ("int", "string", "dateTime.iso8601", ...), and "none" for an absent
 * value (a response without one). Values themselves are never quoted:
 * the text goes into events, and an answer may hold what redact= keeps
 * out of them.
 *
 * Entries come in the order of a walk through the legacy's answer:
 * within a struct, its members in the legacy's order, then the members
 * only the candidate has, in the candidate's order; within an array, the
 * length entry first, then the elements in order.
 *
 * Invariant: npaths <= count; npaths < count only when the cap stopped
 * collection. paths is NULL when npaths is 0.
 */
struct xrdiff_result {
    size_t count;  /* differing paths found, collected or not */
    char **paths;  /* npaths NUL-terminated entries, each its own allocation */
    size_t npaths; /* entries in paths: min(count, the cap) */
};

/*
 * Compares the legacy's answer with the candidate's (neither NULL) under
 * opt (NULL for the defaults). Fills *res, which the caller need not initialise, and
 * returns 0 when the answers are equal (res then counts nothing and holds
 * no paths) or 1 when they differ. It cannot fail: memory comes from
 * mem.h, which aborts when there is none.
 *
 * The cost is linear in the size of the answers, plus a sort of each of
 * the candidate's structs by member name (a struct of n members costs
 * n log n, never n^2). Memory is allocated for the collected paths, and
 * for one scratch index for structs only once they hold more members than
 * fit in a small buffer on the stack. Recursion is bounded by
 * XRDIFF_MAX_DEPTH whatever the trees hold.
 *
 * Both responses are only read. The caller releases res with
 * xrdiff_result_dispose(), whatever this returned.
 */
int xrdiff_compare(const struct xr_response *legacy, const struct xr_response *candidate,
                   const struct xrdiff_options *opt, struct xrdiff_result *res);

/* Frees the paths in res and empties it. NULL is a no-op, and so is
 * disposing an empty result twice. */
void xrdiff_result_dispose(struct xrdiff_result *res);

/*
 * Checks one ignore path (NUL-terminated) for routes.conf and --check.
 * Returns 0 when it is well formed: a root `result` or `fault`, then steps
 * `.name`, `["name"]`, `[N]` or `[]` as described at the top of this file,
 * where a fault's path can only be `fault`, `fault.faultCode` or
 * `fault.faultString`. Otherwise returns -1 with a one-line reason in why
 * (whylen bytes, truncated to fit; nothing written when whylen is 0), e.g.
 *     'result.a b': unexpected ' ' at offset 8
 * The caller adds the file, line and option.
 */
int xrdiff_check_path(const char *path, char *why, size_t whylen);

#endif
