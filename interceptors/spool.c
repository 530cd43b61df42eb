/*
 * spool: the on-disk outbox (see spool.h for the file format).
 *
 * Appends come from many worker threads; each builds its whole record in
 * memory first and then, under the spool's lock, gets the next sequence
 * number and writes the record with one pwrite(2) at the segment's committed
 * end. Only after the write succeeded does the committed end move, so a
 * reader, which reads with pread(2) and never past the committed end it saw
 * under the lock, can never see half a record; and a failed write leaves its
 * bytes past the committed end, where the next append overwrites them.
 *
 * Segment invariants (guarded by `lock`):
 *   - segs[] is sorted by first_seq; the last one is the active segment,
 *     the only one written to, through wfd;
 *   - records inside a segment are consecutive, and a segment that is not
 *     the active one ends right before the next segment's first_seq, except
 *     where recovery cut a torn tail (recover_sealed): the seqs in between
 *     are lost, and nothing reads them;
 *   - a segment is deleted only when every record in it is confirmed, no
 *     pin holds it and it is not the active one, so the newest sequence
 *     number always survives on disk in either a segment or the checkpoint;
 *     and only the oldest one is ever deleted, so the segments on disk are
 *     always one unbroken run.
 *
 * No slow I/O under `lock`: every appender waits on it, so it is held for
 * one pwrite(2) and bookkeeping, and for nothing that waits on the disk.
 * Syncs run in sync rounds, outside it (below). Deleting a segment takes it
 * out of segs[] under the lock and unlinks the file after the lock is
 * released (struct doomed): once it is out of segs[] no cursor of ours can
 * open it, a cursor that has it open keeps reading its descriptor, and its
 * name is never used again (seqs only grow). A crash in between leaves a
 * confirmed segment on disk, which the next start deletes again. What
 * stays under the lock: creating a segment (a directory entry, no sync),
 * closing one, and cutting a failed write's bytes (an error path).
 *
 * Durability (enum spool_fsync): a record is written first and synced
 * after, by "sync rounds". A round takes under the lock what is not on disk
 * yet: the descriptors of sealed segments with unsynced records (a rotation
 * hands them over instead of syncing them), whether a segment was created
 * since the directory was last fsynced, a dup of the active segment's
 * descriptor, and the last seq; then, outside the lock, fdatasyncs those
 * segments, fsyncs the directory (without which a new segment's name, and
 * so every record in it, could vanish in a machine crash) and fdatasyncs
 * the active segment. So a round covers every record written before it
 * started, and no record is reported durable before its segment's name is.
 * With ALWAYS, the appenders that wait take turns leading rounds (group
 * commit); with BATCH, a flusher thread runs one an interval after an
 * append finds everything synced; spool_close() runs a last one.
 *
 * Space: confirmed segments are kept while retention or the pin wants
 * them, and deleted oldest first, before their time but never while
 * pinned, when an append needs room under the cap. What cannot be deleted
 * is unconfirmed or pinned, and once that alone reaches the cap the spool
 * is "full" until confirmations (or the pin moving) free a segment.
 *
 * A read-only spool (spool_open_readonly) shares all the reading code; it
 * holds a snapshot of the segment list taken at open, and the proxy that
 * owns the directory may delete any of those files at any time.
 */
#include "interceptors/spool.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/files.h"
#include "common/mem.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#define RECORD_MAGIC     0x4c4f5053u /* the bytes "SPOL" on disk (little endian) */
#define HEADER_LEN       12u         /* magic, length, CRC-32 */
#define FIXED_LEN        22u         /* seq, time_us and the three u16 lengths */
#define SEG_DIGITS       20          /* enough for any uint64_t */
#define SEG_SUFFIX       ".seg"
#define SEG_NAME_SIZE    (SEG_DIGITS + sizeof(SEG_SUFFIX))
#define DEFAULT_SEGMENT  ((size_t)64 << 20)
#define DEFAULT_FLUSH_MS 100u
#define SEGMENTS_PER_CAP 4u /* with a cap, a segment is at most cap / this */
#define READ_CHUNK       ((size_t)64 << 10)
#define CHECKPOINT       "checkpoint"
#define CHECKPOINT_TMP   "checkpoint.tmp"
#define CHECKPOINT_WORD  "confirmed "
#define ERROR_LOG_GAP_NS 1000000000ull /* at most one I/O error line a second */
#define SAMPLES_MAX      512u          /* per segment: 8 KiB (see struct segment) */

/* One record's seq and time_us. */
struct sample {
    uint64_t seq;
    int64_t time_us;
};

struct segment {
    uint64_t first_seq; /* from the file name */
    uint64_t last_seq;  /* first_seq - 1 while the segment is empty */
    uint64_t size;      /* committed bytes: nobody reads past this */
    /* The largest time_us among its records, for retention: a replay
     * appends old events after new ones, so it need not be the last
     * record's. Exact when appended or scanned here; for a segment neither
     * (confirmed before a restart), an upper bound (see segs_times). */
    int64_t last_time_us;
    int exact_time; /* at open: last_time_us came from reading every record */
    /* A sparse index for spool_get_stats(), so that it never reads the
     * disk: the records at (seq - first_seq) % stride == 0, in seq order,
     * at most SAMPLES_MAX of them; when the array is full, every other one
     * goes and stride doubles, so a segment of more than 512 records has
     * 256 to 512 samples, no two more than 1/256 of its records apart.
     * Filled at append and at open by the
     * recovery scans; freed once every record in the segment is confirmed
     * (the question is only ever about the first unconfirmed one), except
     * for the active segment, which appends keep adding to. */
    struct sample *samples;
    uint32_t nsamples, samples_cap;
    uint64_t stride;
};

/* Segments taken out of segs[] under the lock whose files are unlinked once
 * it is released (see "No slow I/O" above): the first seqs, which name
 * them. */
struct doomed {
    uint64_t *first_seqs;
    size_t n, cap;
};

/* An appender waiting for a sync round to cover its record (ALWAYS). It
 * lives on the appender's stack; the round that covers it unlinks it. */
struct sync_waiter {
    uint64_t seq;
    int done;
    int err; /* 0, or the errno of the fdatasync that covered it */
    struct sync_waiter *next;
};

struct spool {
    char *dir;
    int dirfd;    /* also holds the flock that keeps a second process out (not read-only) */
    int efd;      /* eventfd: readable after appends; -1 when read-only */
    int readonly; /* from spool_open_readonly(): never writes anything */
    /* The options, fixed at open. */
    size_t segment_bytes;
    enum spool_fsync fsync;
    unsigned fsync_interval_ms;
    uint64_t max_bytes;
    int64_t retain_us;
    enum spool_full_policy full_policy;

    pthread_mutex_t lock; /* guards the fields down to ckpt_lock */
    struct segment *segs;
    size_t nsegs, segs_cap;
    int wfd;          /* the active segment, opened for writing; -1 before the first */
    int tail_dirty;   /* a failed write may have left bytes past the committed end */
    int force_rotate; /* start a new segment at the next append */
    uint64_t bytes;   /* sum of the segments' committed sizes (those in segs[]) */
    uint64_t pin;     /* spool_pin(): segments with a record >= it stay; 0: none */

    uint64_t synced_seq; /* every record up to it is on disk */
    int syncing;         /* a sync round is running outside the lock */
    /* Sealed segments with records newer than synced_seq, still open: the
     * next round fdatasyncs and closes them (never with fsync=off). */
    int *unsynced_fds;
    size_t nunsynced, unsynced_cap;
    int dir_unsynced;            /* a segment was created since the directory's last fsync */
    struct sync_waiter *waiters; /* ALWAYS: appends waiting for a round */
    pthread_cond_t synced;       /* broadcast when a round ends */
    pthread_cond_t flush_wake;   /* BATCH: wakes the flusher (CLOCK_MONOTONIC) */
    int flusher_idle;            /* the flusher sleeps until an append signals */
    int stopping;                /* spool_close() asks the flusher to end */
    int flusher_started;
    pthread_t flusher;

    /* Serialises checkpoint writes (the publisher is the only confirmer, but
     * the checkpoint's fsync must not hold up appenders on `lock`). */
    pthread_mutex_t ckpt_lock;

    _Atomic uint64_t last_seq;      /* written under lock, read anywhere */
    _Atomic uint64_t confirmed_seq; /* written under ckpt_lock, read anywhere */
    _Atomic uint64_t append_errors;
    _Atomic uint64_t last_error_log_ns;
    _Atomic uint64_t full_refusals;
    _Atomic uint64_t fsyncs;
    atomic_int full; /* written under lock, read anywhere */
    /* 1 from the append that wrote the eventfd until the reader drains it;
     * appends that find it set skip their write (see spool_notify_drain). */
    atomic_int notified;
};

/* pread(2) with a read-ahead window, for the cursor and for recovery. */
struct seg_reader {
    int fd;
    struct buf win; /* bytes of the file starting at win_off */
    uint64_t win_off;
};

struct spool_cursor {
    struct spool *s;
    uint64_t want;      /* the smallest seq still to return */
    uint64_t seg_first; /* the segment open in rd (rd.fd >= 0) */
    struct seg_reader rd;
    uint64_t off;    /* the next record's offset in that segment */
    uint64_t end;    /* its committed end, as last seen under the lock */
    struct buf strs; /* id, type and key of the last event, NUL-terminated */
    int failed;      /* hit a corrupt record: stays stopped */
};

/* A decoded record; the pointers are into the bytes it was decoded from. */
struct record {
    uint64_t seq;
    int64_t time_us;
    const char *id, *type, *key, *body;
    size_t id_len, type_len, key_len, body_len;
};

/*
 * ---- CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) ----
 *
 * Every record is summed when written and again when read, so this is on
 * the publisher's path for every event: byte at a time it cost about as
 * much as publishing the event. Slicing by 8 (eight tables, eight bytes a
 * step) gives the same sums several times faster, in portable C.
 */

static uint32_t crc_table[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_table[t][i] = crc_table[0][crc_table[t - 1][i] & 0xff] ^ (crc_table[t - 1][i] >> 8);
}

static uint32_t crc32_of(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t crc = 0xffffffffu;
    for (; len >= 8; p += 8, len -= 8) {
        uint32_t lo = crc ^ ((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
                             (uint32_t)p[3] << 24);
        crc = crc_table[7][lo & 0xff] ^ crc_table[6][(lo >> 8) & 0xff] ^
              crc_table[5][(lo >> 16) & 0xff] ^ crc_table[4][lo >> 24] ^ crc_table[3][p[4]] ^
              crc_table[2][p[5]] ^ crc_table[1][p[6]] ^ crc_table[0][p[7]];
    }
    for (; len > 0; p++, len--)
        crc = crc_table[0][(crc ^ *p) & 0xff] ^ (crc >> 8);
    return crc ^ 0xffffffffu;
}

/* ---- little-endian fields ---- */

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* ---- small helpers ---- */

static const char *errstr(int e, char *tmp, size_t len)
{
    return strerror_r(e, tmp, len); /* the GNU variant: returns the text */
}

static void set_err(char *err, size_t errlen, const char *dir, const char *what, int e)
{
    char tmp[128];
    if (err != NULL && errlen > 0)
        snprintf(err, errlen, "spool %s: %s: %s", dir, what, errstr(e, tmp, sizeof(tmp)));
}

static void seg_name(char out[SEG_NAME_SIZE], uint64_t first_seq)
{
    snprintf(out, SEG_NAME_SIZE, "%020" PRIu64 SEG_SUFFIX, first_seq);
}

/* Parses "<20 digits>.seg"; returns the first seq, or 0 for other names. */
static uint64_t seg_parse_name(const char *name)
{
    if (strlen(name) != SEG_NAME_SIZE - 1 || strcmp(name + SEG_DIGITS, SEG_SUFFIX) != 0)
        return 0;
    uint64_t v = 0;
    for (int i = 0; i < SEG_DIGITS; i++) {
        unsigned d = (unsigned)(name[i] - '0');
        if (d > 9 || v > (UINT64_MAX - d) / 10)
            return 0;
        v = v * 10 + d;
    }
    return v;
}

static int write_full_at(int fd, const char *p, size_t len, uint64_t off)
{
    while (len > 0) {
        ssize_t n = pwrite(fd, p, len, (off_t)off);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            return -1;
        p += n;
        len -= (size_t)n;
        off += (uint64_t)n;
    }
    return 0;
}

/* ---- records ---- */

/*
 * Builds the record for ev in rec with seq and CRC left zero (they are only
 * known under the lock; record_seal() fills them). Returns 0, or -1 when a
 * field is too long for the format.
 */
static int record_build(struct buf *rec, const struct spool_event *ev)
{
    size_t id_len = strlen(ev->id), type_len = strlen(ev->type), key_len = strlen(ev->key);
    if (id_len > UINT16_MAX || type_len > UINT16_MAX || key_len > UINT16_MAX)
        return -1;
    uint64_t rest = (uint64_t)FIXED_LEN + id_len + type_len + key_len + ev->body_len;
    if (rest > UINT32_MAX || ev->body_len > UINT32_MAX)
        return -1;

    unsigned char head[HEADER_LEN + FIXED_LEN];
    put_le(head, RECORD_MAGIC, 4);
    put_le(head + 4, rest, 4);
    put_le(head + 8, 0, 4);  /* CRC-32, sealed later */
    put_le(head + 12, 0, 8); /* seq, sealed later */
    put_le(head + 20, (uint64_t)ev->time_us, 8);
    put_le(head + 28, id_len, 2);
    put_le(head + 30, type_len, 2);
    put_le(head + 32, key_len, 2);
    buf_reserve(rec, HEADER_LEN + (size_t)rest);
    buf_append(rec, head, sizeof(head));
    buf_append(rec, ev->id, id_len);
    buf_append(rec, ev->type, type_len);
    buf_append(rec, ev->key, key_len);
    buf_append(rec, ev->body, ev->body_len);
    return 0;
}

static void record_seal(char *rec, size_t len, uint64_t seq)
{
    unsigned char *p = (unsigned char *)rec;
    put_le(p + 12, seq, 8);
    put_le(p + 8, crc32_of(p + HEADER_LEN, len - HEADER_LEN), 4);
}

/* Checks a record header; returns the record's total length, or 0 when the
 * bytes are not a record header. */
static uint64_t header_check(const unsigned char *p)
{
    if (get_le(p, 4) != RECORD_MAGIC)
        return 0;
    uint64_t rest = get_le(p + 4, 4);
    if (rest < FIXED_LEN)
        return 0;
    return HEADER_LEN + rest;
}

/* Decodes the whole record of `total` bytes at p. Returns 0, or -1 when its
 * checksum or its inner lengths are wrong. */
static int record_decode(const unsigned char *p, size_t total, struct record *r)
{
    if (get_le(p + 8, 4) != crc32_of(p + HEADER_LEN, total - HEADER_LEN))
        return -1;
    r->seq = get_le(p + 12, 8);
    r->time_us = (int64_t)get_le(p + 20, 8);
    r->id_len = (size_t)get_le(p + 28, 2);
    r->type_len = (size_t)get_le(p + 30, 2);
    r->key_len = (size_t)get_le(p + 32, 2);
    size_t strings = r->id_len + r->type_len + r->key_len;
    if (strings > total - HEADER_LEN - FIXED_LEN)
        return -1;
    const char *c = (const char *)p + HEADER_LEN + FIXED_LEN;
    r->id = c;
    r->type = c + r->id_len;
    r->key = r->type + r->type_len;
    r->body = r->key + r->key_len;
    r->body_len = total - HEADER_LEN - FIXED_LEN - strings;
    return 0;
}

/* ---- windowed reads ---- */

/*
 * Returns n bytes of the file at off, reading ahead up to `limit` (which the
 * caller knows holds complete data, off + n <= limit). NULL on an I/O error
 * or a file shorter than promised (errno is set).
 */
static const unsigned char *reader_get(struct seg_reader *r, uint64_t off, size_t n, uint64_t limit)
{
    if (off >= r->win_off && off + n <= r->win_off + r->win.len)
        return (const unsigned char *)r->win.data + (off - r->win_off);
    size_t want = n > READ_CHUNK ? n : READ_CHUNK;
    if (want > limit - off)
        want = (size_t)(limit - off);
    r->win.len = 0;
    buf_reserve(&r->win, want);
    size_t got = 0;
    while (got < want) {
        ssize_t k = pread(r->fd, r->win.data + got, want - got, (off_t)(off + got));
        if (k < 0 && errno == EINTR)
            continue;
        if (k < 0)
            return NULL;
        if (k == 0)
            break;
        got += (size_t)k;
    }
    r->win_off = off;
    r->win.len = got;
    if (got < n) {
        errno = EIO; /* the file is shorter than its committed size */
        return NULL;
    }
    return (const unsigned char *)r->win.data;
}

static void reader_reset(struct seg_reader *r, int fd)
{
    if (r->fd >= 0)
        close(r->fd);
    r->fd = fd;
    r->win.len = 0;
    r->win_off = 0;
}

/* ---- errors worth a line ---- */

/* I/O error lines share one rate limit: a failing disk fails every append
 * and every sync, and the log must not become the next thing that fills it.
 * Returns 1 when a line may be written now. */
static int error_log_due(struct spool *s)
{
    uint64_t now = clock_monotonic_ns();
    uint64_t last = atomic_load(&s->last_error_log_ns);
    if (last != 0 && now - last < ERROR_LOG_GAP_NS)
        return 0;
    return atomic_compare_exchange_strong(&s->last_error_log_ns, &last, now);
}

static void sync_failed(struct spool *s, const char *what, int e)
{
    char tmp[128];
    if (error_log_due(s))
        log_error("spool %s: %s failed: %s; the newest events may not survive a machine crash",
                  s->dir, what, errstr(e, tmp, sizeof(tmp)));
}

/* ---- checkpoint ---- */

/* Reads the checkpoint into *out (0 when there is none). A checkpoint that
 * cannot be parsed is logged and read as 0: republishing duplicates is
 * allowed, losing events is not. Returns 0, or -1 (errno) if unreadable. */
static int checkpoint_read(struct spool *s, uint64_t *out)
{
    char text[64];
    ssize_t n = -1;
    *out = 0;
    int fd = openat(s->dirfd, CHECKPOINT, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -1;
    do {
        n = read(fd, text, sizeof(text) - 1);
    } while (n < 0 && errno == EINTR);
    int e = errno;
    close(fd);
    if (n < 0) {
        errno = e;
        return -1;
    }
    text[n] = '\0';
    size_t word = strlen(CHECKPOINT_WORD);
    char *end = NULL;
    errno = 0;
    unsigned long long v = 0;
    if (strncmp(text, CHECKPOINT_WORD, word) == 0 && text[word] >= '0' && text[word] <= '9')
        v = strtoull(text + word, &end, 10);
    if (end == NULL || errno != 0 || strcmp(end, "\n") != 0) {
        log_warn("spool %s: checkpoint unreadable (%.40s); republishing everything spooled", s->dir,
                 text);
        return 0;
    }
    *out = v;
    return 0;
}

/* Replaces the checkpoint atomically: write a temporary file, fsync it,
 * rename it over the old one, fsync the directory so the rename sticks. */
static int checkpoint_write(struct spool *s, uint64_t seq)
{
    char text[48], tmp[128];
    int n = snprintf(text, sizeof(text), CHECKPOINT_WORD "%" PRIu64 "\n", seq);
    const char *step = "create " CHECKPOINT_TMP;
    int rc = -1;
    int fd = openat(s->dirfd, CHECKPOINT_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0)
        goto out;
    step = "write " CHECKPOINT_TMP;
    if (write_full_at(fd, text, (size_t)n, 0) < 0 || fsync(fd) < 0)
        goto out;
    step = "rename " CHECKPOINT_TMP;
    if (renameat(s->dirfd, CHECKPOINT_TMP, s->dirfd, CHECKPOINT) < 0)
        goto out;
    step = "fsync directory";
    if (fsync(s->dirfd) < 0)
        goto out;
    rc = 0;
out:
    if (rc < 0)
        log_error("spool %s: checkpoint: %s: %s", s->dir, step, errstr(errno, tmp, sizeof(tmp)));
    if (fd >= 0)
        close(fd);
    return rc;
}

/* ---- the sparse index of times (struct segment's samples) ---- */

static void samples_free(struct segment *g)
{
    free(g->samples);
    g->samples = NULL;
    g->nsamples = g->samples_cap = 0;
}

/* Notes record `seq` of segment g, appended or recovered in seq order, if
 * its place in the segment falls on the stride. */
static void sample_add(struct segment *g, uint64_t seq, int64_t time_us)
{
    if ((seq - g->first_seq) % g->stride != 0)
        return;
    if (g->nsamples == SAMPLES_MAX) {
        /* Keep the ones at even places: they are the ones a stride twice
         * as long would have taken. */
        for (uint32_t i = 0; i < SAMPLES_MAX / 2; i++)
            g->samples[i] = g->samples[2 * i];
        g->nsamples = SAMPLES_MAX / 2;
        g->stride *= 2;
        if ((seq - g->first_seq) % g->stride != 0)
            return;
    }
    if (g->nsamples == g->samples_cap) {
        g->samples_cap = g->samples_cap > 0 ? g->samples_cap * 2 : 16;
        g->samples = mem_realloc(g->samples, g->samples_cap * sizeof(*g->samples));
    }
    g->samples[g->nsamples++] = (struct sample){seq, time_us};
}

/* The time of g's last sample at or before seq, or of its first one when
 * they all come after (g has samples). */
static int64_t sample_time_at(const struct segment *g, uint64_t seq)
{
    uint32_t lo = 0, hi = g->nsamples;
    while (lo < hi) {
        uint32_t mid = lo + (hi - lo) / 2;
        if (g->samples[mid].seq <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return g->samples[lo > 0 ? lo - 1 : 0].time_us;
}

/* ---- loading the segments ---- */

static void segs_push(struct spool *s, uint64_t first_seq)
{
    if (s->nsegs == s->segs_cap) {
        s->segs_cap = s->segs_cap ? s->segs_cap * 2 : 8;
        s->segs = mem_realloc(s->segs, s->segs_cap * sizeof(*s->segs));
    }
    s->segs[s->nsegs++] =
        (struct segment){.first_seq = first_seq, .last_seq = first_seq - 1, .stride = 1};
}

static int seg_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct segment *)a)->first_seq;
    uint64_t y = ((const struct segment *)b)->first_seq;
    return x < y ? -1 : x > y;
}

/* Sets the segment's size and, until a scan or segs_times() knows better,
 * its time: the file's modification time, when it was last written (see
 * segs_times). Returns 0, or -1 (errno). */
static int seg_stat(const struct spool *s, struct segment *g)
{
    char name[SEG_NAME_SIZE];
    struct stat st;
    seg_name(name, g->first_seq);
    if (fstatat(s->dirfd, name, &st, 0) < 0)
        return -1;
    g->size = (uint64_t)st.st_size;
    g->last_time_us = (int64_t)st.st_mtim.tv_sec * 1000000 + st.st_mtim.tv_nsec / 1000;
    return 0;
}

/* Fills segs[] from the directory, sorted, with last_seq and size of every
 * segment but the last (which open_active() or snapshot_active() scans).
 * A read-only spool drops the segments the proxy deletes while we list. */
static int segs_load(struct spool *s)
{
    size_t kept = 0;
    int rc = -1;
    int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (d == NULL)
        goto out;
    fd = -1; /* the DIR owns it now */
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        uint64_t first = seg_parse_name(de->d_name);
        if (first != 0)
            segs_push(s, first);
    }
    if (s->nsegs > 1)
        qsort(s->segs, s->nsegs, sizeof(*s->segs), seg_cmp);
    for (size_t i = 0; i < s->nsegs; i++) {
        if (seg_stat(s, &s->segs[i]) < 0) {
            if (s->readonly && errno == ENOENT)
                continue;
            goto out;
        }
        s->segs[kept++] = s->segs[i];
    }
    s->nsegs = kept;
    for (size_t i = 0; i + 1 < s->nsegs; i++) {
        s->segs[i].last_seq = s->segs[i + 1].first_seq - 1;
        s->bytes += s->segs[i].size;
    }
    rc = 0;
out:
    if (d != NULL)
        closedir(d);
    if (fd >= 0)
        close(fd);
    return rc;
}

/* What scan_records() found. */
struct scan {
    uint64_t file_size;
    uint64_t end;        /* where the run of good records ends */
    uint64_t last_seq;   /* the last good record's seq (first_seq - 1: none) */
    int64_t max_time_us; /* the largest time_us among them (0: none) */
    const char *why;     /* what ended the run, when end < file_size */
    int more;            /* (look_past) good records follow the bad bytes */
};

/* A good record of this segment, seq in [lo, hi], starts at `at`. */
static int good_record_at(struct seg_reader *rd, uint64_t at, uint64_t size, uint64_t lo,
                          uint64_t hi)
{
    const unsigned char *p;
    struct record r;
    uint64_t total;
    if (size - at < HEADER_LEN || (p = reader_get(rd, at, HEADER_LEN, size)) == NULL)
        return 0;
    if ((total = header_check(p)) == 0 || total > size - at)
        return 0;
    if ((p = reader_get(rd, at, (size_t)total, size)) == NULL)
        return 0;
    return record_decode(p, (size_t)total, &r) == 0 && r.seq >= lo && r.seq <= hi;
}

/*
 * Whether a good record with a seq in [lo, hi] starts anywhere after `off`:
 * then the bad bytes at off are damage in the middle of the segment, not a
 * torn tail. Stale bytes that happen to hold records (blocks of an older,
 * deleted segment) carry seqs outside the range. Looks for the magic, so it
 * costs a read of the rest of the file, only when something is wrong. An
 * I/O error answers 1: what cannot be read is not known to be a torn tail.
 */
static int good_record_after(struct seg_reader *rd, uint64_t off, uint64_t size, uint64_t lo,
                             uint64_t hi)
{
    unsigned char magic[4];
    put_le(magic, RECORD_MAGIC, 4);
    for (uint64_t o = off + 1; o < size && size - o >= HEADER_LEN + FIXED_LEN;) {
        size_t n = size - o > READ_CHUNK ? READ_CHUNK : (size_t)(size - o);
        const unsigned char *p = reader_get(rd, o, n, size);
        if (p == NULL)
            return 1;
        const unsigned char *m = memmem(p, n, magic, sizeof(magic));
        if (m == NULL) {
            o += n - (sizeof(magic) - 1); /* a magic may straddle two chunks */
            continue;
        }
        uint64_t at = o + (uint64_t)(m - p);
        if (good_record_at(rd, at, size, lo, hi))
            return 1;
        o = at + 1;
    }
    return 0;
}

/*
 * Reads segment seg (open as fd) from its start and finds the longest run
 * of complete, valid, consecutive records, seqs no higher than `limit`,
 * into *sc; with look_past, also whether good records follow whatever ended
 * the run. Rebuilds seg's samples from the run; sets nothing else in seg.
 * Returns 0, or -1 on an I/O error (errno).
 */
static int scan_records(struct segment *seg, int fd, uint64_t limit, int look_past, struct scan *sc)
{
    struct seg_reader rd = {fd, BUF_INIT, 0};
    struct stat st;
    uint64_t off = 0, expect = seg->first_seq;
    int64_t max_time = 0;
    const char *why = NULL;
    int rc = -1;

    samples_free(seg);
    seg->stride = 1;
    if (fstat(fd, &st) < 0)
        goto out;
    uint64_t size = (uint64_t)st.st_size;
    while (off < size) {
        struct record r;
        const unsigned char *p;
        uint64_t total;
        why = "torn record header";
        if (size - off < HEADER_LEN)
            break;
        if ((p = reader_get(&rd, off, HEADER_LEN, size)) == NULL)
            goto out;
        why = "not a record header";
        if ((total = header_check(p)) == 0)
            break;
        why = "torn record";
        if (total > size - off)
            break;
        if ((p = reader_get(&rd, off, (size_t)total, size)) == NULL)
            goto out;
        why = "checksum mismatch";
        if (record_decode(p, (size_t)total, &r) < 0)
            break;
        why = "record out of sequence";
        if (r.seq != expect || r.seq > limit)
            break;
        if (expect == seg->first_seq || r.time_us > max_time)
            max_time = r.time_us;
        sample_add(seg, r.seq, r.time_us);
        off += total;
        expect++;
    }
    sc->more = off < size && look_past && good_record_after(&rd, off, size, expect, limit);
    sc->file_size = size;
    sc->end = off;
    sc->last_seq = expect - 1;
    sc->max_time_us = max_time;
    sc->why = why;
    rc = 0;
out:
    buf_dispose(&rd.win);
    return rc;
}

/*
 * Writable: after a crash mid-write, the active segment may end in a torn
 * record or garbage; it is truncated to its last good record, so the next
 * append continues right after it. Keeps the segment open as wfd.
 */
static int open_active(struct spool *s)
{
    char name[SEG_NAME_SIZE];
    struct segment *a = &s->segs[s->nsegs - 1];
    struct scan sc;
    int rc = -1;
    seg_name(name, a->first_seq);
    int fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        goto out;
    if (scan_records(a, fd, UINT64_MAX, 0, &sc) < 0)
        goto out;
    a->size = sc.end;
    a->last_seq = sc.last_seq;
    a->last_time_us = sc.max_time_us;
    a->exact_time = 1;
    if (a->size < sc.file_size) {
        log_warn("spool %s: %s: %s at offset %" PRIu64 "; dropping the last %" PRIu64 " bytes",
                 s->dir, name, sc.why, a->size, sc.file_size - a->size);
        if (ftruncate(fd, (off_t)a->size) < 0 || fsync(fd) < 0)
            goto out;
    }
    s->bytes += a->size;
    s->wfd = fd;
    fd = -1;
    rc = 0;
out:
    if (fd >= 0) {
        int e = errno;
        close(fd);
        errno = e;
    }
    return rc;
}

/*
 * Read-only: the last segment may be in the middle of a write by the proxy
 * that owns it, so whatever follows its last complete record is quietly the
 * end of the snapshot, and the file is left alone. When the proxy deleted it
 * since we listed, the snapshot ends at the segment before.
 */
static int snapshot_active(struct spool *s)
{
    char name[SEG_NAME_SIZE];
    struct segment *a = &s->segs[s->nsegs - 1];
    struct scan sc;
    seg_name(name, a->first_seq);
    int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        s->nsegs--;
        return 0;
    }
    if (fd < 0)
        return -1;
    int rc = scan_records(a, fd, UINT64_MAX, 0, &sc);
    int e = errno;
    close(fd);
    errno = e;
    if (rc == 0) {
        a->size = sc.end;
        a->last_seq = sc.last_seq;
        a->last_time_us = sc.max_time_us;
        a->exact_time = 1;
        s->bytes += a->size;
    }
    return rc;
}

/*
 * Writable, at open: checks a sealed segment that still holds unconfirmed
 * records (segs[i], not the last) all the way to its end.
 *
 * Its records went to disk through the page cache, and with fsync=off
 * (which the previous run may have used: nothing on disk says) a machine
 * crash can leave the end of any recent segment as zeros or stale bytes,
 * not only the last one's. A cursor stops for good at the first bad record,
 * and the publisher with it. So a torn tail (bad bytes with no good record
 * of this segment after them) is cut, with a warning naming the seqs it
 * held, and readers go on with the next segment. Bad bytes followed by
 * good records are not a crash's torn tail but corruption, and cutting
 * would throw the good records away: that is left as it is (logged), and a
 * reader stops there for someone to look at, as it always did.
 *
 * The price is reading every unconfirmed sealed segment once per start.
 * With a cap that is at most about max_bytes; without one it is the whole
 * backlog, at disk speed, which the publisher is about to read right after
 * anyway (and finds in the page cache). Checking only the last few
 * segments would be cheaper but would miss a crash that tore several
 * (with fsync=off nothing bounds how much was not written back), and
 * checking only each segment's last bytes is not possible: records have no
 * backward framing, so finding the last one means walking them all. The
 * scan also yields each segment's exact newest time and its samples.
 * Confirmed segments are not scanned: their events reached the broker, and
 * reading gigabytes retained for replay would make every start slow.
 *
 * An I/O error leaves the segment as it was listed, for the cursor to
 * report. Returns nothing: a segment it cannot fix is not a reason to
 * refuse to start.
 */
static void recover_sealed(struct spool *s, size_t i)
{
    char name[SEG_NAME_SIZE], tmp[128];
    struct segment *g = &s->segs[i];
    uint64_t confirmed = atomic_load(&s->confirmed_seq);
    uint64_t want_last = g->last_seq; /* the next segment starts after it */
    struct scan sc;
    seg_name(name, g->first_seq);
    int fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0 || scan_records(g, fd, want_last, 1, &sc) < 0) {
        log_warn("spool %s: cannot check %s: %s", s->dir, name, errstr(errno, tmp, sizeof(tmp)));
        goto out;
    }
    if (sc.end < sc.file_size && sc.more) {
        log_error("spool %s: %s: %s at offset %" PRIu64 ", with good records after it: "
                  "corrupt, left as it is; readers will stop there",
                  s->dir, name, sc.why, sc.end);
        goto out; /* size and last_seq stay as listed */
    }
    g->last_time_us = sc.max_time_us;
    g->exact_time = 1;
    if (sc.last_seq == want_last && sc.end == sc.file_size)
        goto out;
    /* Torn: the seqs from sc.last_seq + 1 to want_last are gone (none when
     * only bytes past the last record are). */
    char lost[160] = "";
    if (sc.last_seq < want_last) {
        uint64_t from = sc.last_seq + 1;
        uint64_t unconfirmed = want_last - (from > confirmed ? from - 1 : confirmed);
        snprintf(lost, sizeof(lost),
                 ": events %" PRIu64 "..%" PRIu64 " are lost, %" PRIu64 " of them unconfirmed",
                 from, want_last, unconfirmed);
    }
    if (sc.end < sc.file_size)
        log_warn("spool %s: %s: %s at offset %" PRIu64 " (a crash before the page cache reached "
                 "the disk?); dropping the last %" PRIu64 " bytes%s",
                 s->dir, name, sc.why, sc.end, sc.file_size - sc.end, lost);
    else
        log_warn("spool %s: %s ends at seq %" PRIu64 ", before the next segment%s", s->dir, name,
                 sc.last_seq, lost);
    if (sc.end < sc.file_size && (ftruncate(fd, (off_t)sc.end) < 0 || fdatasync(fd) < 0))
        log_warn("spool %s: cannot truncate %s: %s; readers stop at offset %" PRIu64
                 " all the same",
                 s->dir, name, errstr(errno, tmp, sizeof(tmp)), sc.end);
    s->bytes -= g->size;
    g->size = sc.end;
    g->last_seq = sc.last_seq;
    s->bytes += g->size;
out:
    if (fd >= 0)
        close(fd);
}

/* The time_us of the segment's first record, read from its header alone.
 * Returns 0, or -1 when there is no readable first record. */
static int seg_first_time(const struct spool *s, const struct segment *g, int64_t *out)
{
    unsigned char head[HEADER_LEN + FIXED_LEN];
    char name[SEG_NAME_SIZE];
    ssize_t n = -1;
    if (g->size < sizeof(head))
        return -1;
    seg_name(name, g->first_seq);
    int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    do {
        n = pread(fd, head, sizeof(head), 0);
    } while (n < 0 && errno == EINTR);
    close(fd);
    if (n != (ssize_t)sizeof(head) || header_check(head) == 0)
        return -1;
    *out = (int64_t)get_le(head + 20, 8);
    return 0;
}

/*
 * At open, after the scans: gives the sealed segments that were not read
 * whole (those confirmed before the restart, or all of them when
 * read-only) a newest-record time, and those that may hold unconfirmed
 * records but have no samples (read-only) their first record as one.
 *
 * Finding a segment's newest record means reading all of it, and a spool
 * can retain gigabytes, so these get an estimate, and retention must err
 * on the side of keeping: the estimate may be later than the truth, never
 * earlier. The time of the next segment's first record (the record whose
 * append sealed this one) is such a bound only while events are appended
 * in time order; a replay appends old events, so the segment may hold a
 * fresh one and the next start with an old one. The file's modification
 * time is a bound whatever the order: it is when the last record was
 * written, and no record's time_us is later than its write (events are
 * stamped when they happen, before the append; a replay re-appends older
 * ones). So the estimate is the
 * later of the two (seg_stat() set the mtime): a little later than the
 * truth, by as long as the spool sat idle or the replay took. A clock
 * stepped back while events were appended could still make it early.
 */
static void segs_times(struct spool *s)
{
    uint64_t confirmed = atomic_load(&s->confirmed_seq);
    for (size_t i = 0; i < s->nsegs; i++) {
        struct segment *g = &s->segs[i];
        int64_t t;
        int want_sample = g->nsamples == 0 && g->last_seq > confirmed;
        int want_bound = i > 0 && !s->segs[i - 1].exact_time;
        if ((!want_sample && !want_bound) || seg_first_time(s, g, &t) < 0)
            continue;
        if (want_sample)
            sample_add(g, g->first_seq, t);
        if (want_bound && t > s->segs[i - 1].last_time_us)
            s->segs[i - 1].last_time_us = t;
    }
}

/*
 * Reads the checkpoint and the segments into s, the last one scanned to
 * where its complete records end (recovered when writable, a snapshot when
 * read-only) and, when writable, every sealed one holding unconfirmed
 * records checked for a torn tail; sets last_seq and confirmed_seq.
 */
static int load_segments(struct spool *s, char *err, size_t errlen)
{
    uint64_t confirmed = 0;
    if (checkpoint_read(s, &confirmed) < 0) {
        set_err(err, errlen, s->dir, "cannot read " CHECKPOINT, errno);
        return -1;
    }
    atomic_store(&s->confirmed_seq, confirmed);
    if (segs_load(s) < 0) {
        set_err(err, errlen, s->dir, "cannot list segments", errno);
        return -1;
    }
    if (s->nsegs > 0 && (s->readonly ? snapshot_active(s) : open_active(s)) < 0) {
        set_err(err, errlen, s->dir, "cannot recover the last segment", errno);
        return -1;
    }
    for (size_t i = 0; !s->readonly && i + 1 < s->nsegs; i++)
        if (s->segs[i].last_seq > confirmed)
            recover_sealed(s, i);
    segs_times(s);
    uint64_t last = s->nsegs > 0 ? s->segs[s->nsegs - 1].last_seq : 0;
    if (confirmed > last) {
        /* The checkpoint is ahead of the records (they were lost with the
         * page cache): continue numbering after it, in a fresh segment so
         * records inside a segment stay consecutive. */
        last = confirmed;
        s->force_rotate = 1;
    }
    atomic_store(&s->last_seq, last);
    /* Whatever an earlier process left in the page cache reaches the disk
     * without our help; we cannot tell which of it did yet. */
    s->synced_seq = last;
    return 0;
}

/* ---- deleting segments: retention and the cap ---- */

/* The newest seq a deletable segment may hold: confirmed, and below the
 * pin. Deletable segments are a prefix of segs[], since last_seq grows. */
static uint64_t deletable_upto_locked(const struct spool *s)
{
    uint64_t upto = atomic_load(&s->confirmed_seq);
    if (s->pin > 0 && s->pin - 1 < upto)
        upto = s->pin - 1;
    return upto;
}

/* The oldest segment may be deleted: it is not the active one, every
 * record in it is confirmed, and the pin does not hold it. */
static int first_deletable_locked(const struct spool *s)
{
    return s->nsegs > 1 && s->segs[0].last_seq <= deletable_upto_locked(s);
}

/* Takes the oldest segment out of segs[] and adds it to d, whose files
 * unlink_doomed() deletes once the lock is released. */
static void delete_first_locked(struct spool *s, struct doomed *d)
{
    if (d->n == d->cap) {
        d->cap = d->cap > 0 ? d->cap * 2 : 8;
        d->first_seqs = mem_realloc(d->first_seqs, d->cap * sizeof(*d->first_seqs));
    }
    d->first_seqs[d->n++] = s->segs[0].first_seq;
    s->bytes -= s->segs[0].size;
    samples_free(&s->segs[0]);
    s->nsegs--;
    memmove(s->segs, s->segs + 1, s->nsegs * sizeof(*s->segs));
}

/*
 * Not under the lock: deletes the files of the segments in d, oldest
 * first, and empties d. A cursor still reading one keeps its open
 * descriptor. A file that will not go is logged and left on disk, out of
 * the accounting, until the next start lists it and deletes it again.
 */
static void unlink_doomed(struct spool *s, struct doomed *d)
{
    char name[SEG_NAME_SIZE], tmp[128];
    for (size_t i = 0; i < d->n; i++) {
        seg_name(name, d->first_seqs[i]);
        if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT)
            log_warn("spool %s: cannot delete %s: %s; it stays until the next start", s->dir, name,
                     errstr(errno, tmp, sizeof(tmp)));
    }
    free(d->first_seqs);
    *d = (struct doomed){0};
}

/* Deletes (into d) the confirmed segments that retention and the pin do
 * not keep. It stops at the first one it keeps, so it costs nothing when
 * nothing is due. */
static void trim_locked(struct spool *s, int64_t now_us, struct doomed *d)
{
    while (first_deletable_locked(s) &&
           (s->retain_us == 0 || s->segs[0].last_time_us < now_us - s->retain_us))
        delete_first_locked(s, d);
}

/* Bytes of the segments holding a record newer than `upto`: a suffix of
 * segs[], walked from the end, so it costs one step per such segment. An
 * empty active segment shares its last_seq with the one before it, so it
 * stops the walk exactly when that one would. */
static uint64_t bytes_newer_locked(const struct spool *s, uint64_t upto)
{
    uint64_t sum = 0;
    for (size_t i = s->nsegs; i > 0 && s->segs[i - 1].last_seq > upto; i--)
        sum += s->segs[i - 1].size;
    return sum;
}

static uint64_t unconfirmed_bytes_locked(const struct spool *s)
{
    return bytes_newer_locked(s, atomic_load(&s->confirmed_seq));
}

/*
 * Recomputes the full state after appends, confirms, trims or the pin
 * changed the bytes, and logs each change once. Full means the segments
 * that cannot be deleted (unconfirmed, or held by the pin) reach the cap.
 * The walk is only needed near the cap: below it, those bytes are too.
 */
static void full_update_locked(struct spool *s)
{
    if (s->max_bytes == 0)
        return;
    uint64_t kept = s->bytes >= s->max_bytes ? bytes_newer_locked(s, deletable_upto_locked(s)) : 0;
    int full = kept >= s->max_bytes;
    if (full == atomic_load(&s->full))
        return;
    atomic_store(&s->full, full);
    if (full)
        log_warn("spool %s: full: %" PRIu64 " bytes unconfirmed%s reach the cap of %" PRIu64
                 " bytes; %s",
                 s->dir, kept, kept > unconfirmed_bytes_locked(s) ? " or pinned for a replay" : "",
                 s->max_bytes,
                 s->full_policy == SPOOL_FULL_REFUSE ? "intercepted calls are refused (full=refuse)"
                                                     : "new events are skipped (full=skip)");
    else
        log_info("spool %s: no longer full: %" PRIu64
                 " bytes unconfirmed, under the cap of %" PRIu64 " bytes",
                 s->dir, unconfirmed_bytes_locked(s), s->max_bytes);
}

/* Frees the samples of the segments confirmation left with nothing
 * unconfirmed. Walks back from the first segment still holding an
 * unconfirmed record to the first one already without samples, so each
 * segment costs one step once. The active segment keeps its samples:
 * appends go on adding to them. */
static void samples_drop_confirmed_locked(struct spool *s)
{
    uint64_t confirmed = atomic_load(&s->confirmed_seq);
    size_t i = s->nsegs;
    while (i > 0 && s->segs[i - 1].last_seq > confirmed)
        i--;
    if (i == s->nsegs && i > 0)
        i--; /* all confirmed: not the active one */
    while (i > 0 && s->segs[i - 1].samples != NULL)
        samples_free(&s->segs[--i]);
}

/* ---- durability (see enum spool_fsync and "Durability" above) ---- */

/* fdatasync(2), counted in the stats. Returns 0 or the errno. */
static int datasync(struct spool *s, int fd)
{
    atomic_fetch_add(&s->fsyncs, 1);
    while (fdatasync(fd) < 0)
        if (errno != EINTR)
            return errno;
    return 0;
}

/* Ends a sync round that covered every record up to `upto` (err: 0 when
 * its fdatasync succeeded): completes the appends waiting for those records
 * and wakes every waiter, so that one of the others leads the next round.
 * A failure is reported to the records it covered, never retried for them:
 * after a failed fdatasync Linux may already have dropped the dirty pages,
 * so a second attempt that succeeds would prove nothing. */
static void sync_done_locked(struct spool *s, uint64_t upto, int err)
{
    if (err == 0 && upto > s->synced_seq)
        s->synced_seq = upto;
    for (struct sync_waiter **p = &s->waiters; *p != NULL;) {
        struct sync_waiter *w = *p;
        if (w->seq > upto) {
            p = &w->next;
            continue;
        }
        w->done = 1;
        w->err = err;
        *p = w->next;
    }
    pthread_cond_broadcast(&s->synced);
}

/*
 * One sync round (see "Durability" above): takes under the lock the
 * sealed segments not yet synced, whether the directory needs an fsync, a
 * dup of wfd (a rotation may close wfd meanwhile) and the last seq; syncs
 * them all without holding the lock, so that appends go on meanwhile; and
 * reports every record up to that seq covered. A directory fsync that
 * failed is tried again by the next round (it is about a name, not about
 * pages the kernel may have dropped); a failed segment is not (see
 * sync_done_locked). Returns 0 or the first errno.
 */
static int sync_round_locked(struct spool *s)
{
    uint64_t upto = atomic_load(&s->last_seq);
    int *sealed = s->unsynced_fds;
    size_t nsealed = s->nunsynced;
    int dir = s->dir_unsynced, dir_err = 0;
    int fd = s->wfd >= 0 ? dup(s->wfd) : -1;
    int err = s->wfd >= 0 && fd < 0 ? errno : 0;
    s->unsynced_fds = NULL;
    s->nunsynced = s->unsynced_cap = 0;
    s->dir_unsynced = 0;
    s->syncing = 1;
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < nsealed; i++) {
        int e = datasync(s, sealed[i]);
        if (err == 0)
            err = e;
        close(sealed[i]);
    }
    if (dir && fsync(s->dirfd) < 0) {
        dir_err = errno;
        if (err == 0)
            err = dir_err;
    }
    if (fd >= 0) {
        int e = datasync(s, fd);
        if (err == 0)
            err = e;
        close(fd);
    }
    free(sealed);
    pthread_mutex_lock(&s->lock);
    if (dir_err != 0)
        s->dir_unsynced = 1;
    s->syncing = 0;
    sync_done_locked(s, upto, err);
    return err;
}

/*
 * ALWAYS, group commit: waits until a round covers seq. A waiter that finds
 * no round running leads the next one itself; since a round covers every
 * record written before it started, the appenders that queue up while one
 * round runs all share the next. Returns 0 or the errno of the failed
 * fdatasync that covered seq.
 */
static int sync_wait_locked(struct spool *s, uint64_t seq)
{
    struct sync_waiter w = {seq, 0, 0, s->waiters};
    /* w leaves the list (sync_done_locked) before done is set, so before
     * this returns; GCC's optimiser cannot see that and warns at -O2. */
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wdangling-pointer"
#endif
    s->waiters = &w;
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 12
#pragma GCC diagnostic pop
#endif
    while (!w.done) {
        if (!s->syncing)
            sync_round_locked(s);
        else
            pthread_cond_wait(&s->synced, &s->lock);
    }
    return w.err;
}

/* After a record was written. Returns 0 or an errno. */
static int sync_appended_locked(struct spool *s, uint64_t seq)
{
    switch (s->fsync) {
    case SPOOL_FSYNC_ALWAYS:
        return sync_wait_locked(s, seq);
    case SPOOL_FSYNC_BATCH:
        /* One signal per batch: the flusher, once awake, waits out its
         * interval whatever else is appended. */
        if (s->flusher_idle) {
            s->flusher_idle = 0;
            pthread_cond_signal(&s->flush_wake);
        }
        break;
    case SPOOL_FSYNC_OFF:
        break;
    }
    return 0;
}

/* Waits out the flush interval, unless spool_close() interrupts it. */
static void flush_delay_locked(struct spool *s)
{
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    deadline.tv_sec += (time_t)(s->fsync_interval_ms / 1000);
    deadline.tv_nsec += (long)(s->fsync_interval_ms % 1000) * 1000000L;
    if (deadline.tv_nsec >= 1000000000L) {
        deadline.tv_sec++;
        deadline.tv_nsec -= 1000000000L;
    }
    while (!s->stopping && pthread_cond_timedwait(&s->flush_wake, &s->lock, &deadline) != ETIMEDOUT)
        ;
}

/*
 * BATCH's thread: sleeps until an append leaves a record that is not on
 * disk, gives later appends the interval to join it, and syncs them all in
 * one round. A failed round is retried an interval later. spool_close()
 * stops it and syncs what is left itself.
 */
static void *flusher_main(void *arg)
{
    struct spool *s = arg;
    pthread_mutex_lock(&s->lock);
    while (!s->stopping) {
        if (atomic_load(&s->last_seq) <= s->synced_seq) {
            s->flusher_idle = 1;
            pthread_cond_wait(&s->flush_wake, &s->lock);
            s->flusher_idle = 0;
            continue;
        }
        flush_delay_locked(s);
        if (s->stopping)
            break;
        int err = sync_round_locked(s);
        if (err != 0)
            sync_failed(s, "fdatasync", err);
    }
    pthread_mutex_unlock(&s->lock);
    return NULL;
}

static int flusher_start(struct spool *s)
{
    int e = pthread_create(&s->flusher, NULL, flusher_main, s);
    if (e != 0) {
        errno = e;
        return -1;
    }
    s->flusher_started = 1;
    return 0;
}

static void flusher_stop(struct spool *s)
{
    if (!s->flusher_started)
        return;
    pthread_mutex_lock(&s->lock);
    s->stopping = 1;
    pthread_cond_broadcast(&s->flush_wake);
    pthread_mutex_unlock(&s->lock);
    pthread_join(s->flusher, NULL);
    s->flusher_started = 0;
}

/* ---- the active segment ---- */

/* Cuts bytes a failed write left past the committed end, so they can never
 * end up inside a segment that is sealed and read to its file size. Under
 * the lock, but only ever after a failed write: an error path, and the cut
 * does not wait for the disk. */
static void trim_tail_locked(struct spool *s)
{
    if (!s->tail_dirty || s->wfd < 0 || s->nsegs == 0)
        return;
    if (ftruncate(s->wfd, (off_t)s->segs[s->nsegs - 1].size) == 0)
        s->tail_dirty = 0;
}

/*
 * Closes the active segment for good (at rotation and at close). Its
 * records that no round has covered yet are the next round's to sync
 * (rounds only dup wfd, so this is the last chance to hand them over):
 * the descriptor goes to unsynced_fds instead of an fdatasync here, which
 * would hold every appender up for as long as the disk takes.
 */
static void seal_active_locked(struct spool *s)
{
    const struct segment *a = &s->segs[s->nsegs - 1];
    trim_tail_locked(s);
    if (s->tail_dirty)
        log_error("spool %s: could not trim a failed write; the segment before the next one "
                  "holds garbage at its end",
                  s->dir);
    if (s->fsync == SPOOL_FSYNC_OFF || a->last_seq <= s->synced_seq) {
        close(s->wfd);
    } else {
        if (s->nunsynced == s->unsynced_cap) {
            s->unsynced_cap = s->unsynced_cap > 0 ? s->unsynced_cap * 2 : 4;
            s->unsynced_fds =
                mem_realloc(s->unsynced_fds, s->unsynced_cap * sizeof(*s->unsynced_fds));
        }
        s->unsynced_fds[s->nunsynced++] = s->wfd;
    }
    s->wfd = -1;
}

/*
 * Starts a new active segment whose first record will be `seq`. Its name
 * reaches the disk with the directory's fsync in the next round, which is
 * also the round that reports its first record durable (with
 * fsync=always, the append waits for it): a machine crash before that may
 * lose the new file with everything in it, but nothing reported durable.
 */
static int rotate_locked(struct spool *s, uint64_t seq)
{
    char name[SEG_NAME_SIZE];
    seg_name(name, seq);
    int fd = openat(s->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (s->wfd >= 0)
        seal_active_locked(s);
    segs_push(s, seq);
    s->wfd = fd;
    s->tail_dirty = 0;
    s->force_rotate = 0;
    if (s->fsync != SPOOL_FSYNC_OFF)
        s->dir_unsynced = 1;
    return 0;
}

static int need_rotate_locked(const struct spool *s, size_t len)
{
    if (s->nsegs == 0 || s->wfd < 0 || s->force_rotate)
        return 1;
    const struct segment *a = &s->segs[s->nsegs - 1];
    return a->size > 0 && a->size + len > s->segment_bytes;
}

/* The active segment holds records, and could go once sealed: all of them
 * confirmed, none pinned. */
static int active_deletable_locked(const struct spool *s)
{
    if (s->nsegs == 0)
        return 0;
    const struct segment *a = &s->segs[s->nsegs - 1];
    return a->size > 0 && a->last_seq <= deletable_upto_locked(s);
}

/*
 * With a cap, makes room for a record of len bytes, first record `seq`, by
 * deleting (into d) the oldest confirmed segments, whatever retention says
 * but never what the pin holds; when the active segment could go too, it
 * is sealed so that it can. Whatever is still over the cap then is
 * unconfirmed or pinned, and the caller's full_update_locked() decides.
 * Returns 0, or -1 (errno) when a new segment could not be created.
 */
static int make_room_locked(struct spool *s, size_t len, uint64_t seq, struct doomed *d)
{
    while (s->max_bytes > 0 && s->bytes + len > s->max_bytes) {
        if (first_deletable_locked(s)) {
            delete_first_locked(s, d);
        } else if (active_deletable_locked(s)) {
            if (rotate_locked(s, seq) < 0)
                return -1;
        } else {
            break;
        }
    }
    return 0;
}

/* ---- open and close ---- */

/* A spool with every resource it might own unset, so spool_close() can
 * take it back from any point of the opening. */
static struct spool *spool_alloc(const char *dir, const struct spool_options *opt)
{
    struct spool_options o = {0};
    pthread_condattr_t attr;
    struct spool *s = mem_calloc(1, sizeof(*s));

    if (opt != NULL)
        o = *opt;
    s->dir = mem_strdup(dir);
    s->dirfd = s->efd = s->wfd = -1;
    s->segment_bytes = o.segment_bytes > 0 ? o.segment_bytes : DEFAULT_SEGMENT;
    if (o.max_bytes > 0 && s->segment_bytes > o.max_bytes / SEGMENTS_PER_CAP)
        s->segment_bytes =
            o.max_bytes >= SEGMENTS_PER_CAP ? (size_t)(o.max_bytes / SEGMENTS_PER_CAP) : 1;
    s->fsync = o.fsync;
    s->fsync_interval_ms = o.fsync_interval_ms > 0 ? o.fsync_interval_ms : DEFAULT_FLUSH_MS;
    s->max_bytes = o.max_bytes;
    s->retain_us =
        o.retain_ms > (uint64_t)INT64_MAX / 1000 ? INT64_MAX : (int64_t)o.retain_ms * 1000;
    s->full_policy = o.full;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->ckpt_lock, NULL);
    pthread_cond_init(&s->synced, NULL);
    /* The flush interval is a duration: the wall clock must not stretch or
     * shrink it. */
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s->flush_wake, &attr);
    pthread_condattr_destroy(&attr);
    atomic_init(&s->full, 0);
    atomic_init(&s->notified, 0);
    return s;
}

/* Everything after the directory is open and locked: the eventfd, the
 * checkpoint, the segments and their recovery, and what retention and the
 * cap make of them. */
static int load_state(struct spool *s, char *err, size_t errlen)
{
    if ((s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        set_err(err, errlen, s->dir, "eventfd", errno);
        return -1;
    }
    unlinkat(s->dirfd, CHECKPOINT_TMP, 0); /* a crash between write and rename */
    if (load_segments(s, err, errlen) < 0)
        return -1;
    /* Nothing else runs yet: no need to defer the deletions. */
    struct doomed d = {0};
    trim_locked(s, clock_realtime_us(), &d);
    unlink_doomed(s, &d);
    samples_drop_confirmed_locked(s);
    full_update_locked(s);
    return 0;
}

struct spool *spool_open(const char *dir, const struct spool_options *opt, char *err, size_t errlen)
{
    struct spool *s = NULL;

    pthread_once(&crc_once, crc_init);
    if (files_make_dirs(dir) < 0) {
        set_err(err, errlen, dir, "cannot create", errno);
        goto fail;
    }
    s = spool_alloc(dir, opt);
    if ((s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        set_err(err, errlen, dir, "cannot open", errno);
        goto fail;
    }
    /* Two processes appending to one spool would interleave records. */
    if (flock(s->dirfd, LOCK_EX | LOCK_NB) < 0) {
        set_err(err, errlen, dir,
                errno == EWOULDBLOCK ? "in use by another process" : "cannot lock", errno);
        goto fail;
    }
    if (faccessat(s->dirfd, ".", W_OK | X_OK, AT_EACCESS) < 0) {
        set_err(err, errlen, dir, "cannot write", errno);
        goto fail;
    }
    if (load_state(s, err, errlen) < 0)
        goto fail;
    if (s->fsync == SPOOL_FSYNC_BATCH && flusher_start(s) < 0) {
        set_err(err, errlen, dir, "cannot start the flusher thread", errno);
        goto fail;
    }
    return s;
fail:
    spool_close(s);
    return NULL;
}

struct spool *spool_open_readonly(const char *dir, char *err, size_t errlen)
{
    pthread_once(&crc_once, crc_init);
    struct spool *s = spool_alloc(dir, NULL);
    s->readonly = 1;
    /* No flock: the proxy holds it, and a reader must never make the proxy
     * fail to start either. */
    if ((s->dirfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC)) < 0) {
        set_err(err, errlen, dir, "cannot open", errno);
        goto fail;
    }
    if (load_segments(s, err, errlen) < 0)
        goto fail;
    return s;
fail:
    spool_close(s);
    return NULL;
}

void spool_close(struct spool *s)
{
    if (s == NULL)
        return;
    flusher_stop(s);
    /* Alone now, but the round unlocks and locks again. */
    pthread_mutex_lock(&s->lock);
    if (s->wfd >= 0)
        seal_active_locked(s);
    if (s->fsync != SPOOL_FSYNC_OFF &&
        (s->nunsynced > 0 || s->dir_unsynced || atomic_load(&s->last_seq) > s->synced_seq)) {
        int err = sync_round_locked(s);
        if (err != 0)
            sync_failed(s, "fdatasync at close", err);
    }
    pthread_mutex_unlock(&s->lock);
    for (size_t i = 0; i < s->nunsynced; i++)
        close(s->unsynced_fds[i]);
    free(s->unsynced_fds);
    for (size_t i = 0; i < s->nsegs; i++)
        samples_free(&s->segs[i]);
    if (s->efd >= 0)
        close(s->efd);
    if (s->dirfd >= 0)
        close(s->dirfd); /* releases the flock */
    pthread_cond_destroy(&s->flush_wake);
    pthread_cond_destroy(&s->synced);
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->ckpt_lock);
    free(s->segs);
    free(s->dir);
    free(s);
}

/* ---- appending ---- */

static void notify(struct spool *s)
{
    /* One eventfd write per batch of appends the reader has not drained. */
    if (atomic_exchange(&s->notified, 1))
        return;
    uint64_t one = 1;
    ssize_t n;
    do {
        n = write(s->efd, &one, sizeof(one));
    } while (n < 0 && errno == EINTR);
}

static void append_failed(struct spool *s, const char *what, int e)
{
    char tmp[128];
    uint64_t count = atomic_fetch_add(&s->append_errors, 1) + 1;
    if (!error_log_due(s))
        return;
    log_error("spool %s: append failed: %s%s%s (%" PRIu64 " failed appends so far)", s->dir, what,
              e != 0 ? ": " : "", e != 0 ? errstr(e, tmp, sizeof(tmp)) : "", count);
}

/*
 * Under the lock: makes room under the cap (the segments it takes out go
 * to d, for the caller to unlink after the lock), numbers, seals and writes
 * the record, then syncs it as the fsync mode says. Returns 0; SPOOL_APPEND_FULL
 * when the spool is full and skips; or -1 with *what and errno set. *seq is
 * set once the record is written, even when its sync then failed.
 */
static int append_locked(struct spool *s, struct buf *rec, int64_t time_us, uint64_t *seq,
                         const char **what, struct doomed *d)
{
    uint64_t next = atomic_load(&s->last_seq) + 1;
    if (s->full_policy == SPOOL_FULL_SKIP && atomic_load(&s->full))
        return SPOOL_APPEND_FULL;
    *what = "cannot create a segment";
    if (need_rotate_locked(s, rec->len) && rotate_locked(s, next) < 0)
        return -1;
    if (make_room_locked(s, rec->len, next, d) < 0)
        return -1;
    record_seal(rec->data, rec->len, next);
    struct segment *a = &s->segs[s->nsegs - 1];
    *what = "write";
    if (write_full_at(s->wfd, rec->data, rec->len, a->size) < 0) {
        int e = errno;
        s->tail_dirty = 1;
        trim_tail_locked(s);
        errno = e;
        return -1;
    }
    /* The newest time, not the last: a replay appends old events. */
    if (a->size == 0 || time_us > a->last_time_us)
        a->last_time_us = time_us;
    a->size += rec->len;
    a->last_seq = next;
    sample_add(a, next, time_us);
    s->bytes += rec->len;
    atomic_store(&s->last_seq, next);
    *seq = next;
    full_update_locked(s);
    *what = "fdatasync";
    int e = sync_appended_locked(s, next);
    errno = e;
    return e == 0 ? 0 : -1;
}

int spool_append(struct spool *s, struct spool_event *ev)
{
    struct buf rec = BUF_INIT;
    struct doomed d = {0};
    const char *what = "event too large for a record";
    uint64_t seq = 0;
    int rc = -1, e = 0;

    if (s->readonly)
        return -1;
    if (record_build(&rec, ev) == 0) {
        pthread_mutex_lock(&s->lock);
        rc = append_locked(s, &rec, ev->time_us, &seq, &what, &d);
        e = errno;
        pthread_mutex_unlock(&s->lock);
    }
    buf_dispose(&rec);
    unlink_doomed(s, &d);
    if (seq != 0)
        notify(s); /* written, even if its sync failed: the reader may take it */
    if (rc == SPOOL_APPEND_FULL)
        atomic_fetch_add(&s->full_refusals, 1);
    else if (rc < 0)
        append_failed(s, what, e);
    else
        ev->seq = seq;
    return rc;
}

int spool_is_full(struct spool *s)
{
    return atomic_load(&s->full);
}

int spool_refuses_calls(struct spool *s)
{
    return s->full_policy == SPOOL_FULL_REFUSE && atomic_load(&s->full);
}

int spool_notify_fd(const struct spool *s)
{
    return s->efd;
}

void spool_notify_drain(const struct spool *s)
{
    /* The spool is never const underneath; the header promises only that
     * draining does not change what the spool holds. */
    struct spool *m = (struct spool *)s;
    uint64_t v;
    ssize_t n;
    if (m->efd < 0)
        return;
    /* Read the eventfd first, then clear the flag. The other order loses
     * wake-ups: an append between the two would write the eventfd, we would
     * read it away, and the flag it left set would make every later append
     * skip its write. This way an append that still sees the flag set has
     * committed before our exchange (acquire, pairing with notify()), so the
     * reader's next look at the cursor finds it. */
    do {
        n = read(m->efd, &v, sizeof(v));
    } while (n < 0 && errno == EINTR);
    atomic_exchange(&m->notified, 0);
}

uint64_t spool_last_seq(struct spool *s)
{
    return atomic_load(&s->last_seq);
}

uint64_t spool_confirmed_seq(struct spool *s)
{
    return atomic_load(&s->confirmed_seq);
}

static uint64_t first_seq_locked(const struct spool *s)
{
    for (size_t i = 0; i < s->nsegs; i++)
        if (s->segs[i].last_seq >= s->segs[i].first_seq)
            return s->segs[i].first_seq;
    return 0;
}

uint64_t spool_first_seq(struct spool *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t first = first_seq_locked(s);
    pthread_mutex_unlock(&s->lock);
    return first;
}

int spool_confirm(struct spool *s, uint64_t seq)
{
    struct doomed d = {0};
    int rc = 0;
    if (s->readonly)
        return -1;
    uint64_t last = atomic_load(&s->last_seq);
    if (seq > last)
        seq = last;
    pthread_mutex_lock(&s->ckpt_lock);
    if (seq > atomic_load(&s->confirmed_seq)) {
        if (checkpoint_write(s, seq) < 0) {
            rc = -1;
        } else {
            atomic_store(&s->confirmed_seq, seq);
            pthread_mutex_lock(&s->lock);
            trim_locked(s, clock_realtime_us(), &d);
            samples_drop_confirmed_locked(s);
            full_update_locked(s);
            pthread_mutex_unlock(&s->lock);
            unlink_doomed(s, &d);
        }
    }
    pthread_mutex_unlock(&s->ckpt_lock);
    return rc;
}

void spool_trim(struct spool *s)
{
    struct doomed d = {0};
    if (s->readonly)
        return;
    pthread_mutex_lock(&s->lock);
    trim_locked(s, clock_realtime_us(), &d);
    full_update_locked(s);
    pthread_mutex_unlock(&s->lock);
    unlink_doomed(s, &d);
}

void spool_pin(struct spool *s, uint64_t seq)
{
    if (s->readonly)
        return;
    pthread_mutex_lock(&s->lock);
    s->pin = seq;
    /* Held segments may now count toward the cap, or no longer. */
    full_update_locked(s);
    pthread_mutex_unlock(&s->lock);
}

uint64_t spool_unconfirmed_bytes(struct spool *s)
{
    pthread_mutex_lock(&s->lock);
    uint64_t n = unconfirmed_bytes_locked(s);
    pthread_mutex_unlock(&s->lock);
    return n;
}

uint64_t spool_max_bytes(const struct spool *s)
{
    return s->max_bytes;
}

static ssize_t seg_find_for_locked(const struct spool *s, uint64_t seq);

/*
 * The time_us of the first unconfirmed event, or of the nearest sample
 * before it (see struct segment): found in memory, never on disk, so a
 * scrape costs two binary searches whatever was confirmed since the last.
 * Skips segments a torn tail left short of the seq (their records are
 * lost). 0 when everything is confirmed, or nothing after it is sampled.
 */
static int64_t oldest_unconfirmed_time_locked(const struct spool *s)
{
    uint64_t want = atomic_load(&s->confirmed_seq) + 1;
    if (want > atomic_load(&s->last_seq))
        return 0;
    ssize_t i = seg_find_for_locked(s, want);
    for (; i >= 0 && (size_t)i < s->nsegs; i++) {
        const struct segment *g = &s->segs[i];
        if (g->last_seq >= want && g->nsamples > 0)
            return sample_time_at(g, want);
    }
    return 0;
}

void spool_get_stats(struct spool *s, struct spool_stats *out)
{
    pthread_mutex_lock(&s->lock);
    out->bytes = s->bytes;
    out->segments = s->nsegs;
    /* The confirmed segments but the active one (one reading of
     * confirmed_seq: a confirm may move it meanwhile). */
    uint64_t confirmed = atomic_load(&s->confirmed_seq);
    uint64_t unconfirmed = bytes_newer_locked(s, confirmed);
    const struct segment *a = s->nsegs > 0 ? &s->segs[s->nsegs - 1] : NULL;
    int active_confirmed = a != NULL && a->last_seq <= confirmed;
    out->retained_bytes = s->bytes - unconfirmed - (active_confirmed ? a->size : 0);
    out->first_seq = first_seq_locked(s);
    out->oldest_unconfirmed_time_us = oldest_unconfirmed_time_locked(s);
    pthread_mutex_unlock(&s->lock);
    out->last_seq = atomic_load(&s->last_seq);
    out->confirmed_seq = atomic_load(&s->confirmed_seq);
    out->append_errors = atomic_load(&s->append_errors);
    out->full = atomic_load(&s->full);
    out->full_refusals = atomic_load(&s->full_refusals);
    out->fsyncs = atomic_load(&s->fsyncs);
}

/* ---- cursors ---- */

struct spool_cursor *spool_cursor_new(struct spool *s, uint64_t after_seq)
{
    struct spool_cursor *c = mem_calloc(1, sizeof(*c));
    c->s = s;
    c->want = after_seq + 1;
    c->rd.fd = -1;
    return c;
}

void spool_cursor_free(struct spool_cursor *c)
{
    if (c == NULL)
        return;
    reader_reset(&c->rd, -1);
    buf_dispose(&c->rd.win);
    buf_dispose(&c->strs);
    free(c);
}

/* Index of the segment with exactly this first seq, or -1 (deleted). */
static ssize_t seg_find_exact_locked(const struct spool *s, uint64_t first)
{
    size_t lo = 0, hi = s->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->segs[mid].first_seq < first)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < s->nsegs && s->segs[lo].first_seq == first ? (ssize_t)lo : -1;
}

/* Index of the segment that holds seq: the last one starting at or before
 * it, or the first one when all start after it (those before were
 * confirmed and deleted). -1 when there are no segments. */
static ssize_t seg_find_for_locked(const struct spool *s, uint64_t seq)
{
    if (s->nsegs == 0)
        return -1;
    size_t lo = 0, hi = s->nsegs;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (s->segs[mid].first_seq <= seq)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo == 0 ? 0 : (ssize_t)lo - 1;
}

/* Index of the first segment starting after `first`, or -1. */
static ssize_t seg_find_after_locked(const struct spool *s, uint64_t first)
{
    for (size_t i = 0; i < s->nsegs; i++)
        if (s->segs[i].first_seq > first)
            return (ssize_t)i;
    return -1;
}

/*
 * Under the lock (so that our own spool cannot delete the segment
 * meanwhile): opens segment i for the cursor. Under a read-only spool the
 * proxy may have deleted it since the snapshot; then everything in it was
 * confirmed and is gone for every reader, and the cursor goes on with the
 * next one. Returns 1, 0 when no segment is left, or -1 (logged).
 */
static int cursor_open_locked(struct spool_cursor *c, size_t i)
{
    char name[SEG_NAME_SIZE], tmp[128];
    const struct spool *s = c->s;
    for (; i < s->nsegs; i++) {
        const struct segment *g = &s->segs[i];
        seg_name(name, g->first_seq);
        int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
        if (fd >= 0) {
            reader_reset(&c->rd, fd);
            c->seg_first = g->first_seq;
            c->off = 0;
            c->end = g->size;
            return 1;
        }
        if (!s->readonly || errno != ENOENT) {
            log_error("spool %s: cannot open %s: %s", s->dir, name,
                      errstr(errno, tmp, sizeof(tmp)));
            return -1;
        }
        if (c->want <= g->last_seq)
            c->want = g->last_seq + 1;
    }
    reader_reset(&c->rd, -1);
    return 0;
}

/*
 * Under the lock: learns how far the open segment is committed now, and
 * when it is read to its end and sealed, moves to the following segment
 * (or straight to the one holding c->want, skipping what was deleted).
 * Returns 1 when there is something to read, 0 when caught up, -1 on error.
 */
static int cursor_refresh_locked(struct spool_cursor *c)
{
    const struct spool *s = c->s;
    ssize_t i;
    if (c->rd.fd < 0) {
        i = seg_find_for_locked(s, c->want);
        return i < 0 ? 0 : cursor_open_locked(c, (size_t)i);
    }
    i = seg_find_exact_locked(s, c->seg_first);
    if (i >= 0) {
        c->end = s->segs[i].size;
        if (c->off < c->end)
            return 1;
        if ((size_t)i + 1 == s->nsegs)
            return 0; /* the active segment: caught up with the appends */
    }
    /* Read to its end and sealed, or deleted under us (then everything in it
     * was confirmed, and skipping the rest is what a reader wants). */
    ssize_t next = seg_find_after_locked(s, c->seg_first);
    ssize_t holder = seg_find_for_locked(s, c->want);
    if (holder > next)
        next = holder;
    if (next < 0) {
        reader_reset(&c->rd, -1);
        return 0;
    }
    return cursor_open_locked(c, (size_t)next);
}

/* Makes sure a segment is open with committed bytes left to read.
 * Returns 1, 0 when caught up, or -1. */
static int cursor_advance(struct spool_cursor *c)
{
    while (c->rd.fd < 0 || c->off >= c->end) {
        pthread_mutex_lock(&c->s->lock);
        int r = cursor_refresh_locked(c);
        pthread_mutex_unlock(&c->s->lock);
        if (r <= 0)
            return r;
    }
    return 1;
}

static int cursor_corrupt(struct spool_cursor *c, const char *why)
{
    char name[SEG_NAME_SIZE];
    seg_name(name, c->seg_first);
    log_error("spool %s: %s: %s at offset %" PRIu64 "; the reader stops here", c->s->dir, name, why,
              c->off);
    c->failed = 1;
    return -1;
}

static void cursor_fill(struct spool_cursor *c, const struct record *r, struct spool_event *out)
{
    struct buf *b = &c->strs;
    b->len = 0;
    buf_reserve(b, r->id_len + r->type_len + r->key_len + 3);
    buf_append(b, r->id, r->id_len);
    buf_append_char(b, '\0');
    buf_append(b, r->type, r->type_len);
    buf_append_char(b, '\0');
    buf_append(b, r->key, r->key_len);
    buf_append_char(b, '\0');
    out->seq = r->seq;
    out->time_us = r->time_us;
    out->id = b->data;
    out->type = b->data + r->id_len + 1;
    out->key = out->type + r->type_len + 1;
    out->body = r->body;
    out->body_len = r->body_len;
}

/* Reads the record at c->off (below c->end). Returns 1 when it is one to
 * return, 0 when it precedes c->want, -1 when it is corrupt. Everything
 * below the committed end is complete, so any defect here is corruption. */
static int cursor_read_record(struct spool_cursor *c, struct spool_event *out)
{
    uint64_t avail = c->end - c->off;
    const unsigned char *p;
    struct record r;
    char tmp[128];

    if (avail < HEADER_LEN)
        return cursor_corrupt(c, "truncated record header");
    if ((p = reader_get(&c->rd, c->off, HEADER_LEN, c->end)) == NULL)
        return cursor_corrupt(c, errstr(errno, tmp, sizeof(tmp)));
    uint64_t total = header_check(p);
    if (total == 0)
        return cursor_corrupt(c, "not a record header");
    if (total > avail)
        return cursor_corrupt(c, "record runs past the segment's end");
    if ((p = reader_get(&c->rd, c->off, (size_t)total, c->end)) == NULL)
        return cursor_corrupt(c, errstr(errno, tmp, sizeof(tmp)));
    if (record_decode(p, (size_t)total, &r) < 0)
        return cursor_corrupt(c, "checksum mismatch");
    if (r.seq < c->seg_first)
        return cursor_corrupt(c, "record out of sequence");
    c->off += total;
    if (r.seq < c->want)
        return 0;
    cursor_fill(c, &r, out);
    c->want = r.seq + 1;
    return 1;
}

int spool_cursor_next(struct spool_cursor *c, struct spool_event *out)
{
    if (c->failed)
        return -1;
    for (;;) {
        int r = cursor_advance(c);
        if (r <= 0) {
            if (r < 0)
                c->failed = 1;
            return r;
        }
        r = cursor_read_record(c, out);
        if (r != 0)
            return r;
    }
}
