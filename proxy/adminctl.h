/*
 * adminctl: the command-line client of the admin API.
 *
 * `strangler routes`, `strangler flip NAME ACTION...`, `strangler reload` and
 * `strangler events replay` talk to a running proxy over its admin address so nobody has to
 * hand-write curl calls with bearer tokens. Each invocation makes exactly one HTTP request
 * (libcurl's easy interface) and owns nothing once adminctl_main() returns.
 *
 * The code is split in two: adminctl_main() does the I/O (arguments, the
 * config, the token, the request), and the adminctl_format_*() functions
 * turn an answer's JSON into the text a person reads. The latter are pure,
 * so the unit tests pin their output byte for byte.
 */
#ifndef STRANGLER_PROXY_ADMINCTL_H
#define STRANGLER_PROXY_ADMINCTL_H

#include "common/buf.h"

#include <stddef.h>

/* The usage lines of the three commands, for main()'s --help text: each
 * indented by seven blanks, to line up under a "usage: strangler ..." line. */
extern const char adminctl_usage[];

/*
 * Runs an admin command: argv[0] is "routes", "flip", "reload" or "events"
 * (then argv[1] is "replay"); the other arguments are the command's
 * (`routes [--json]`, `flip NAME ACTION...`, `reload`,
 * `events replay [--since TIME|SPAN] [--type GLOB]`) and, anywhere among them, `--admin HOST:PORT`
 * and
 * `--token-file PATH` ("--" ends the options). config_path is the
 * routes.conf whose `admin` line says where the admin API listens
 * (overridden by --admin HOST:PORT) and which token to send (overridden by
 * --token-file PATH, whose first non-comment line is the secret or
 * "NAME SECRET"; else the environment variable STRANGLER_ADMIN_TOKEN when
 * set and not empty; else the first of the config's tokens; else none).
 * With --admin the config is read only when the token has to come from it,
 * and a missing file then just means "no token".
 * Prints results to stdout, errors to stderr; never prints the token.
 * Returns the process exit code: 0 done, 1 the proxy refused (4xx/5xx; its
 * message printed), 2 usage error (including a config that does not load:
 * its FILE:LINE messages are printed), 3 the admin API could not be reached
 * or answered something unreadable.
 */
int adminctl_main(const char *config_path, int argc, char **argv);

/*
 * Appends the `GET /routes` answer (json, len bytes) to out as a table:
 * ROUTE, MATCH (with its conditions), ACTION, REQUESTS, FAULTS, ERRORS,
 * EVENTS, widths computed from the content, numbers right-aligned, and for
 * a route flipped at run time a trailing "(changed by WHO at WHEN, was
 * BEFORE)". Control characters in the answer print as '?'.
 * Returns 0, or -1 when the text is not a JSON array of route objects (out
 * is then left as it was).
 */
int adminctl_format_routes(const char *json, size_t len, struct buf *out);

/* Formats GET /methods' JSON as the headline (the share of answered calls
 * new services served) and a table of the methods, most called first.
 * Returns 0, or -1 when the JSON is not what the proxy sends. */
int adminctl_format_methods(const char *json, size_t len, struct buf *out);

/*
 * Appends the JSON text re-indented for people, with a final newline
 * (`routes --json`). Returns 0, or -1 when it is not JSON (out untouched).
 */
int adminctl_format_json(const char *json, size_t len, struct buf *out);

/*
 * Appends "NAME: BEFORE -> ACTION\n" for the route object a `PUT
 * /routes/NAME` answers with (BEFORE from "changed.before"; "NAME: now
 * ACTION\n" when the answer names no previous action). Returns 0, or -1
 * when the text is not a route object (out untouched).
 */
int adminctl_format_flip(const char *json, size_t len, struct buf *out);

/*
 * For the `POST /reload` answer, appends "reloaded: N routes, M upstreams\n"
 * and one "  ROUTE: BEFORE -> AFTER\n" line per changed route to out, and
 * each warning line (as the proxy wrote it, "FILE:LINE: warning: ...") plus
 * a newline to warnings. Returns 0, or -1 when the text is not a reload
 * answer (out and warnings untouched).
 */
int adminctl_format_reload(const char *json, size_t len, struct buf *out, struct buf *warnings);

/*
 * For the `POST /events/replay` answer {"replayed": N}, appends
 * "replayed N events: the publisher sends them again\n"; when the answer
 * says the replay stopped early ("stopped", "resume_since"), also why and
 * the command that resumes it. Returns 0 for a finished replay, 1 for one
 * that stopped early, or -1 when the text is not a replay answer (out
 * untouched).
 */
int adminctl_format_replay(const char *json, size_t len, struct buf *out);

/*
 * Appends what to tell the user when the proxy refused with HTTP `status`:
 * "strangler: ERROR\n" and each of "messages" on a line of its own when
 * the body is the admin API's {"error": ..., "messages": [...]}, else
 * "strangler: the admin API answered HTTP STATUS" with the body's first
 * line (shortened) when there is one. Always succeeds.
 */
void adminctl_format_error(long status, const char *body, size_t len, struct buf *out);

/*
 * Reads the secret from a token file: the first line that is neither blank
 * nor a '#' comment holds either the bare secret or "NAME SECRET". On
 * success returns 0 and sets *secret to a NUL-terminated copy the caller
 * frees (wiping it first: explicit_bzero). On failure returns -1 and writes
 * a message naming path (never the secret) into err (err_size bytes).
 */
int adminctl_read_token_file(const char *path, char **secret, char *err, size_t err_size);

#endif
