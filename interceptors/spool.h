/*
 * spool: the on-disk outbox between intercepted traffic and RabbitMQ.
 *
 * An event is appended here before the client gets its answer, and leaves
 * only when the broker has confirmed it, so a broker outage or a killed proxy
 * loses nothing that was answered (at-least-once; consumers de-duplicate by
 * event id). Confirmed events may be kept a while longer (retain_ms) for
 * `strangler events tail` and replay tools, which read the spool of a
 * running proxy through spool_open_readonly().
 *
 * On disk, a directory of segment files named by the sequence number of
 * their first record ("00000000000000000001.seg"), plus a "checkpoint" file
 * holding the highest confirmed sequence number, replaced atomically
 * (write, fsync, rename). Each record is framed as
 *     u32 magic | u32 length of the rest | u32 CRC-32 of the rest |
 *     u64 seq | i64 time_us | u16 id len | u16 type len | u16 key len |
 *     id | type | key | body
 * little endian. On open, a torn or corrupt tail of the last segment (a
 * crash mid-write) is truncated away; everything before it is kept. So is a
 * torn tail of any earlier segment that still holds unconfirmed records (a
 * machine crash under fsync=off can leave zeros or garbage where the page
 * cache had not been written back): those records are lost, logged by seq,
 * and readers go on with the next segment.
 *
 * Threads: spool_append() may be called from any thread (it takes the
 * spool's lock for the duration of one write(2), and with
 * SPOOL_FSYNC_ALWAYS then waits for its fdatasync without holding it).
 * Exactly one thread, the publisher, reads with a cursor and confirms.
 * spool_is_full(), spool_last_seq(), spool_confirmed_seq(), spool_pin(),
 * spool_unconfirmed_bytes() and spool_get_stats() may be called from any
 * thread. No thread that appends waits on the spool's lock for a sync or a
 * deletion: those run outside it. With SPOOL_FSYNC_BATCH
 * the spool owns one thread of its own, the flusher, from spool_open() to
 * spool_close().
 */
#ifndef STRANGLER_INTERCEPTORS_SPOOL_H
#define STRANGLER_INTERCEPTORS_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct spool;
struct spool_cursor;

/* When appended records reach the disk. */
enum spool_fsync {
    /* The default: a flusher thread fdatasyncs at most fsync_interval_ms
     * after an append; appends never wait for it. A machine crash loses at
     * most that interval's events. */
    SPOOL_FSYNC_BATCH = 0,
    /* spool_append() returns only once its record is on disk; appenders
     * that arrive while one fdatasync runs share the next one (group
     * commit). */
    SPOOL_FSYNC_ALWAYS,
    /* The page cache decides: a process crash loses nothing, a machine
     * crash may lose the newest records. */
    SPOOL_FSYNC_OFF,
};

/* What happens once the unconfirmed events fill max_bytes. */
enum spool_full_policy {
    /* The default: spool_append() refuses (SPOOL_APPEND_FULL) and counts
     * it; clients keep being served and their events are skipped. */
    SPOOL_FULL_SKIP = 0,
    /* spool_append() never refuses for the cap (only for I/O errors); the
     * proxy asks spool_is_full() before forwarding an intercepted call and
     * refuses the call instead, so nothing answered goes unrecorded. The cap
     * can be exceeded by what was in flight. */
    SPOOL_FULL_REFUSE,
};

/* A zeroed struct (or NULL) gives every default. */
struct spool_options {
    /* Start a new segment past this size; 0: 64 MiB. With a cap, segments
     * are at most a quarter of max_bytes, so that confirming makes room in
     * steps smaller than the cap. */
    size_t segment_bytes;
    enum spool_fsync fsync;
    /* BATCH: the longest a record waits for its fdatasync; 0: 100. */
    unsigned fsync_interval_ms;
    /* Cap on the bytes on disk, all segments; 0: no cap. Room is made by
     * deleting the oldest confirmed segments first, whatever retain_ms says
     * (but never one spool_pin() holds); the spool is full only when the
     * segments that cannot be deleted (unconfirmed or pinned) alone reach
     * the cap. With SPOOL_FULL_SKIP, the append that reaches the cap is still
     * written, so the cap can be exceeded by one record. */
    uint64_t max_bytes;
    /* Keep confirmed segments until their newest event (the largest
     * time_us in them, which need not be the last one's: a replay appends
     * old events) is this old, for `events tail` and replay; 0: delete them
     * once confirmed. After a restart, a confirmed segment's newest time is
     * estimated on the late side (see segs_times in spool.c). */
    uint64_t retain_ms;
    enum spool_full_policy full;
};

/* One spooled event. For spool_append() the caller fills everything but
 * seq; a cursor fills all of it with pointers valid until its next call. */
struct spool_event {
    uint64_t seq; /* 1, 2, 3, ... in append order, never reused */
    int64_t time_us;
    const char *id;   /* NUL-terminated, at most 65535 bytes */
    const char *type; /* AMQP "type" property */
    const char *key;  /* routing key */
    const char *body; /* the CloudEvent JSON */
    size_t body_len;
};

/*
 * Opens (creating if needed) the spool in `dir`, recovering after a crash,
 * and takes a lock on it that keeps other processes from opening it the
 * same way. opt may be NULL (all defaults); it is copied. Returns the spool,
 * or NULL with a message in err (errlen bytes) such as
 * "spool ./var/spool: cannot create: Permission denied". The caller frees it
 * with spool_close().
 */
struct spool *spool_open(const char *dir, const struct spool_options *opt, char *err,
                         size_t errlen);

/*
 * Opens the spool in `dir` for reading only, for tools that read the spool
 * of a running proxy: takes no lock, never writes, truncates or deletes
 * anything, and sees a snapshot of the segments as they were at open time.
 * A torn or partial last record (a write in progress) is the end of the
 * data; a segment the proxy deletes before a cursor reaches it is skipped.
 * spool_append(), spool_confirm() return -1 on it, spool_trim() does
 * nothing, spool_notify_fd() is -1. Returns the spool, or NULL with a
 * message in err. The caller frees it with spool_close().
 */
struct spool *spool_open_readonly(const char *dir, char *err, size_t errlen);

/* Stops the flusher (after a last fdatasync), closes the files and frees
 * the spool. No append may be in progress. NULL is a no-op. */
void spool_close(struct spool *s);

/* spool_append()'s result when it refused an event because the spool is
 * full (SPOOL_FULL_SKIP). */
#define SPOOL_APPEND_FULL (-2)

/*
 * Appends ev, setting ev->seq. Returns 0; SPOOL_APPEND_FULL when the spool
 * is full and its policy is SPOOL_FULL_SKIP (counted, not logged per event,
 * and no seq is used up); or -1 when the write failed (the error is logged;
 * nothing partial stays visible to readers) or, with SPOOL_FSYNC_ALWAYS,
 * when its fdatasync failed (the record stays in the spool and may still be
 * published, but it may not survive a machine crash). Thread-safe.
 */
int spool_append(struct spool *s, struct spool_event *ev);

/*
 * 1 while the spool is full: its unconfirmed or pinned segments alone are
 * at or over max_bytes, after deleting the others could not make room; 0
 * otherwise (always 0 without a cap). The state is entered by an append and
 * left when confirmations (or the pin moving) free room; each change is
 * logged once. Thread-safe.
 */
int spool_is_full(struct spool *s);

/* 1 while the spool is full and its policy is full=refuse: intercepted
 * calls must be refused before they reach an upstream. */
int spool_refuses_calls(struct spool *s);

/* An eventfd that becomes readable after appends, for poll(2); the reader
 * drains it with spool_notify_drain(). */
int spool_notify_fd(const struct spool *s);
void spool_notify_drain(const struct spool *s);

/* Highest sequence number appended so far (0: none ever). */
uint64_t spool_last_seq(struct spool *s);

/* Highest sequence number confirmed (everything up to it may be gone). */
uint64_t spool_confirmed_seq(struct spool *s);

/* The oldest sequence number still on disk (0: none), where a cursor made
 * with any older after_seq starts. */
uint64_t spool_first_seq(struct spool *s);

/*
 * Records that every event with seq <= `seq` was confirmed by the broker:
 * persists the checkpoint, then deletes the confirmed segments that
 * retention does not keep (spool_trim()). Returns 0, or -1 if the checkpoint
 * could not be written or the spool is read-only.
 */
int spool_confirm(struct spool *s, uint64_t seq);

/*
 * Applies retention now: deletes the confirmed segments, except the one
 * being written and those spool_pin() holds, whose newest event is older
 * than retain_ms. Cheap when there is nothing to do; the owner calls it
 * about once a second (confirms also trim). Does nothing on a read-only
 * spool.
 */
void spool_trim(struct spool *s);

/*
 * A pin for a reader that must not lose history (the admin API's replay,
 * the only user: one pin per spool). Until changed, neither retention
 * (spool_trim(), spool_confirm()) nor making room under the cap deletes a
 * segment holding any record with seq >= `seq`; 0 removes the pin. A reader
 * pins before it makes its cursor and moves the pin up as it reads. When
 * the cap cannot be kept because of the pin, appends behave as at the cap:
 * the spool becomes full (SPOOL_APPEND_FULL with full=skip; with
 * full=refuse the append succeeds and spool_refuses_calls() says so) until
 * the pin moves or goes. Thread-safe; does nothing on a read-only spool.
 */
void spool_pin(struct spool *s, uint64_t seq);

/* Bytes on disk in the segments that hold records newer than the confirmed
 * seq, counted by whole segments: the figure the cap compares (plus, while
 * a pin holds confirmed segments, theirs). Cheap: no I/O, one step per such
 * segment, under the lock. Thread-safe. */
uint64_t spool_unconfirmed_bytes(struct spool *s);

/* The cap, options.max_bytes; 0: no cap. */
uint64_t spool_max_bytes(const struct spool *s);

/* A reader positioned after `after_seq`; an after_seq older than what is
 * still on disk starts at spool_first_seq(). Free with spool_cursor_free(). */
struct spool_cursor *spool_cursor_new(struct spool *s, uint64_t after_seq);
void spool_cursor_free(struct spool_cursor *c);

/*
 * Reads the next event into *out. Returns 1 when it did, 0 when the cursor
 * has caught up with the last append, -1 on an I/O or format error (logged).
 */
int spool_cursor_next(struct spool_cursor *c, struct spool_event *out);

/* Figures for metrics and tests. */
struct spool_stats {
    uint64_t last_seq;
    uint64_t confirmed_seq;
    uint64_t bytes; /* on disk, all segments */
    size_t segments;
    uint64_t append_errors;
    int full;                /* spool_is_full() */
    uint64_t full_refusals;  /* appends refused for the cap */
    uint64_t fsyncs;         /* fdatasyncs of segment data (not the directory
                                or the checkpoint) */
    uint64_t retained_bytes; /* confirmed segments kept for replay */
    /* The time_us of the oldest unconfirmed event, or of a record shortly
     * before it, at most 1/256 of its segment's records earlier (the spool
     * samples times as records are appended or recovered, rather than read
     * the disk for every scrape). So now minus this is an upper bound on
     * the oldest unconfirmed event's age while events are appended in time
     * order (a replay's old events make it look older). 0: nothing
     * unconfirmed. */
    int64_t oldest_unconfirmed_time_us;
    uint64_t first_seq; /* spool_first_seq() */
};

/* Fills *out. Cheap: a few binary searches under the lock, never any I/O,
 * so /metrics can call it on every scrape. Thread-safe. */
void spool_get_stats(struct spool *s, struct spool_stats *out);

#endif
