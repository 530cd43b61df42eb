/*
 * eventlog: the spool read as a history of events.
 *
 * The spool keeps confirmed segments for a while (`spool ... retain=24h`),
 * so it is also a log of what the proxy intercepted. Two users read it:
 * `strangler events tail`, which prints it for people and scripts (one JSON
 * line per event, straight from the files, while a proxy runs), and
 * `POST /events/replay` (`strangler events replay`), with which a service
 * that arrives late asks the running proxy to publish the history again.
 * Replayed events are appended to the spool as they were (same id, type,
 * key, body and time), so they go out through the publisher, in order,
 * with confirms, and consumers that already have them de-duplicate by id.
 *
 * Both select events with the same filter: events at or after a time, of
 * types matching a glob.
 */
#ifndef STRANGLER_PROXY_EVENTLOG_H
#define STRANGLER_PROXY_EVENTLOG_H

#include "common/buf.h"
#include "interceptors/spool.h"

#include <stdatomic.h>
#include <stdint.h>

/* Which events: both conditions must hold. */
struct eventlog_filter {
    int64_t since_us;      /* event time (microseconds since the epoch) at least this; 0: any */
    const char *type_glob; /* '*' matches any run of characters; NULL: any type */
};

/*
 * Reads --since's value: an RFC 3339 time ("2026-11-21T10:00:00Z",
 * "2026-11-21T11:00:00.5+01:00") or a span back from now_us ("90s", "15m",
 * "24h", "7d"). Returns 0 with *since_us set, or -1 with a reason in why.
 */
int eventlog_parse_since(const char *text, int64_t now_us, int64_t *since_us, char *why,
                         size_t whylen);

/* Nonzero when ev passes f. */
int eventlog_match(const struct eventlog_filter *f, const struct spool_event *ev);

/*
 * Appends one line for `events tail`:
 *   {"seq":N,"key":"...","confirmed":true,"event":{...the CloudEvent...}}\n
 * confirmed says whether the broker had confirmed the event when it was read.
 */
void eventlog_write_line(struct buf *out, const struct spool_event *ev, int confirmed);

/* What a replay did. */
struct eventlog_replay_result {
    uint64_t replayed; /* events appended again */
    int64_t resume_us; /* stopped early: the time of the first matching event not
                          replayed (resume with --since it); 0 when it finished */
    char why[256];     /* stopped early or failed: the reason */
};

/*
 * Appends to s again every event that passes f among those in s when the
 * call starts (what it appends itself is not read again), as they were:
 * same id, type, key, body and time. It pins what it has yet to read, so
 * neither retention nor the cap deletes history under it, and it stops
 * early, with a reason and the time to resume from, when the spool's
 * unconfirmed events reach half its cap (the other half stays for live
 * traffic) or when *stop becomes nonzero. Returns 0 when it finished, 1
 * when it stopped early, -1 when the spool could not be read or written
 * (what was appended stays). Reads the whole retained spool: run it on a
 * thread of its own, never on a loop that serves anything.
 */
int eventlog_replay(struct spool *s, const struct eventlog_filter *f, const atomic_int *stop,
                    struct eventlog_replay_result *res);

/*
 * `strangler events tail [--since T] [--type GLOB]`: prints the retained
 * events of the spool that config_path's `spool` line names, oldest first,
 * one eventlog_write_line() each, reading the files without disturbing a
 * proxy that owns them. argv[0] is "tail". Returns the exit code: 0 done,
 * 1 the spool could not be read, 2 usage error or a config that does not
 * load.
 */
int eventlog_tail_main(const char *config_path, int argc, char **argv);

/* The usage line of `strangler events tail`, for --help. */
extern const char eventlog_tail_usage_line[];

#endif
