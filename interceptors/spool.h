/*
 * spool: the on-disk outbox between intercepted traffic and RabbitMQ.
 *
 * An event is appended here before the client gets its answer, and leaves
 * only when the broker has confirmed it, so a broker outage or a killed proxy
 * loses nothing that was answered (at-least-once; consumers de-duplicate by
 * event id).
 *
 * On disk, a directory of segment files named by the sequence number of
 * their first record ("00000000000000000001.seg"), plus a "checkpoint" file
 * holding the highest confirmed sequence number, replaced atomically
 * (write, fsync, rename). Each record is framed as
 *     u32 magic | u32 length of the rest | u32 CRC-32 of the rest |
 *     u64 seq | i64 time_us | u16 id len | u16 type len | u16 key len |
 *     id | type | key | body
 * little endian. On open, a torn or corrupt tail of the last segment (a
 * crash mid-write) is truncated away; everything before it is kept.
 *
 * Threads: spool_append() may be called from any thread (it takes the
 * spool's lock for the duration of one write(2)). Exactly one thread, the
 * publisher, reads with a cursor and confirms.
 */
#ifndef STRANGLER_INTERCEPTORS_SPOOL_H
#define STRANGLER_INTERCEPTORS_SPOOL_H

#include <stddef.h>
#include <stdint.h>

struct spool;
struct spool_cursor;

struct spool_options {
    size_t segment_bytes; /* start a new segment past this size; 0: 64 MiB */
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
 * Opens (creating if needed) the spool in `dir`, recovering after a crash.
 * Returns the spool, or NULL with a message in err (errlen bytes) such as
 * "spool ./var/spool: cannot create: Permission denied". The caller frees it
 * with spool_close().
 */
struct spool *spool_open(const char *dir, const struct spool_options *opt, char *err,
                         size_t errlen);

/* Closes the files and frees the spool. NULL is a no-op. */
void spool_close(struct spool *s);

/*
 * Appends ev, setting ev->seq. Returns 0, or -1 when the write failed (the
 * error is logged; nothing partial stays visible to readers). Thread-safe.
 */
int spool_append(struct spool *s, struct spool_event *ev);

/* An eventfd that becomes readable after appends, for poll(2); the reader
 * drains it with spool_notify_drain(). */
int spool_notify_fd(const struct spool *s);
void spool_notify_drain(const struct spool *s);

/* Highest sequence number appended so far (0: none ever). */
uint64_t spool_last_seq(struct spool *s);

/* Highest sequence number confirmed (everything up to it may be gone). */
uint64_t spool_confirmed_seq(struct spool *s);

/*
 * Records that every event with seq <= `seq` was confirmed by the broker:
 * persists the checkpoint and deletes segments that hold nothing newer.
 * Returns 0, or -1 if the checkpoint could not be written.
 */
int spool_confirm(struct spool *s, uint64_t seq);

/* A reader positioned after `after_seq`. Free with spool_cursor_free(). */
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
    uint64_t bytes;  /* on disk, all segments */
    size_t segments;
    uint64_t append_errors;
};
void spool_get_stats(struct spool *s, struct spool_stats *out);

#endif
