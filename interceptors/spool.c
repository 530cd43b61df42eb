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
 *     the active one ends right before the next segment's first_seq;
 *   - a segment is deleted only when every record in it is confirmed and it
 *     is not the active one, so the newest sequence number always survives on
 *     disk in either a segment or the checkpoint; and only the oldest one is
 *     ever deleted, so the segments on disk are always one unbroken run.
 *
 * Durability (enum spool_fsync): a record is written first and synced
 * after, by "sync rounds". A round fdatasyncs the active segment outside the
 * lock and thereby covers every record written before it started, because a
 * rotation syncs the segment it seals. With ALWAYS, the appenders that wait
 * take turns leading rounds (group commit); with BATCH, a flusher thread
 * runs one an interval after an append finds everything synced.
 *
 * Space: confirmed segments are kept while retention wants them, and
 * deleted oldest first, before their time, when an append needs room under
 * the cap. What cannot be deleted is unconfirmed, and once that alone
 * reaches the cap the spool is "full" until confirmations free a segment.
 *
 * A read-only spool (spool_open_readonly) shares all the reading code; it
 * holds a snapshot of the segment list taken at open, and the proxy that
 * owns the directory may delete any of those files at any time.
 */
#include "interceptors/spool.h"

#include "common/buf.h"
#include "common/clock.h"
#include "common/log.h"
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

struct segment {
    uint64_t first_seq;   /* from the file name */
    uint64_t last_seq;    /* first_seq - 1 while the segment is empty */
    uint64_t size;        /* committed bytes: nobody reads past this */
    int64_t last_time_us; /* time_us of its newest record, for retention (see segs_times) */
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
    uint64_t bytes;   /* sum of the segments' committed sizes */

    uint64_t synced_seq;         /* every record up to it is on disk */
    int syncing;                 /* a sync round is running fdatasync outside the lock */
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

    /* For spool_get_stats(): a cursor of the spool's own, left at the first
     * unconfirmed record, and that record's seq and time. */
    pthread_mutex_t head_lock;
    struct spool_cursor *head;
    uint64_t head_seq;
    int64_t head_time_us;

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

/* mkdir -p: creates each missing component of path. */
static int make_dirs(const char *path)
{
    char *tmp = mem_strdup(path);
    int rc = -1;
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            goto out;
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        goto out;
    rc = 0;
out:
    free(tmp);
    return rc;
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

/* ---- loading the segments ---- */

static void segs_push(struct spool *s, uint64_t first_seq)
{
    if (s->nsegs == s->segs_cap) {
        s->segs_cap = s->segs_cap ? s->segs_cap * 2 : 8;
        s->segs = mem_realloc(s->segs, s->segs_cap * sizeof(*s->segs));
    }
    s->segs[s->nsegs++] = (struct segment){first_seq, first_seq - 1, 0, 0};
}

static int seg_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct segment *)a)->first_seq;
    uint64_t y = ((const struct segment *)b)->first_seq;
    return x < y ? -1 : x > y;
}

/* Sets the segment's size and, until segs_times() knows better, its time
 * from the file. Returns 0, or -1 (errno). */
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
 * segment but the last (which recover_active() or snapshot_active() scans).
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

/*
 * Reads segment seg (open as fd) from its start and keeps the longest run
 * of complete, valid, consecutive records: sets the segment's size to the
 * end of that run, its last_seq and last_time_us. *file_size gets the size
 * of the file and *why what ended the run before it. Returns 0, or -1 on an
 * I/O error (errno).
 */
static int scan_records(struct segment *seg, int fd, uint64_t *file_size, const char **why)
{
    struct seg_reader rd = {fd, BUF_INIT, 0};
    struct stat st;
    uint64_t off = 0, expect = seg->first_seq;
    int64_t last_time = 0;
    int rc = -1;

    if (fstat(fd, &st) < 0)
        goto out;
    uint64_t size = (uint64_t)st.st_size;
    while (off < size) {
        struct record r;
        const unsigned char *p;
        uint64_t total;
        *why = "torn record header";
        if (size - off < HEADER_LEN)
            break;
        if ((p = reader_get(&rd, off, HEADER_LEN, size)) == NULL)
            goto out;
        *why = "not a record header";
        if ((total = header_check(p)) == 0)
            break;
        *why = "torn record";
        if (total > size - off)
            break;
        if ((p = reader_get(&rd, off, (size_t)total, size)) == NULL)
            goto out;
        *why = "checksum mismatch";
        if (record_decode(p, (size_t)total, &r) < 0)
            break;
        *why = "record out of sequence";
        if (r.seq != expect)
            break;
        off += total;
        expect++;
        last_time = r.time_us;
    }
    *file_size = size;
    seg->size = off;
    seg->last_seq = expect - 1;
    seg->last_time_us = last_time;
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
    const char *why = NULL;
    uint64_t file_size = 0;
    int rc = -1;
    seg_name(name, a->first_seq);
    int fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        goto out;
    if (scan_records(a, fd, &file_size, &why) < 0)
        goto out;
    if (a->size < file_size) {
        log_warn("spool %s: %s: %s at offset %" PRIu64 "; dropping the last %" PRIu64 " bytes",
                 s->dir, name, why, a->size, file_size - a->size);
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
    const char *why = NULL;
    uint64_t file_size = 0;
    seg_name(name, a->first_seq);
    int fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        s->nsegs--;
        return 0;
    }
    if (fd < 0)
        return -1;
    int rc = scan_records(a, fd, &file_size, &why);
    int e = errno;
    close(fd);
    errno = e;
    if (rc == 0)
        s->bytes += a->size;
    return rc;
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
 * Sets the newest-record time of every sealed segment at open. Finding a
 * segment's last record means reading all of it, and a spool can hold
 * gigabytes of backlog or retained events; so a sealed segment takes the
 * time of the next segment's first record instead, the record whose append
 * sealed it. That is a little later than its own newest record (as much
 * later as the spool sat idle in between), so retention after a restart
 * keeps a segment that much longer, never shorter. Without a readable next
 * record, the file's modification time from seg_stat() stays. The active
 * segment got its exact time from the scan.
 */
static void segs_times(struct spool *s)
{
    for (size_t i = 0; i + 1 < s->nsegs; i++) {
        int64_t t;
        if (seg_first_time(s, &s->segs[i + 1], &t) == 0)
            s->segs[i].last_time_us = t;
    }
}

/*
 * Reads the checkpoint and the segments into s, the last one scanned to
 * where its complete records end (recovered when writable, a snapshot when
 * read-only), and sets last_seq and confirmed_seq.
 */
static int load_segments(struct spool *s, char *err, size_t errlen)
{
    uint64_t confirmed = 0;
    if (checkpoint_read(s, &confirmed) < 0) {
        set_err(err, errlen, s->dir, "cannot read " CHECKPOINT, errno);
        return -1;
    }
    if (segs_load(s) < 0) {
        set_err(err, errlen, s->dir, "cannot list segments", errno);
        return -1;
    }
    if (s->nsegs > 0 && (s->readonly ? snapshot_active(s) : open_active(s)) < 0) {
        set_err(err, errlen, s->dir, "cannot recover the last segment", errno);
        return -1;
    }
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
    atomic_store(&s->confirmed_seq, confirmed);
    /* Whatever an earlier process left in the page cache reaches the disk
     * without our help; we cannot tell which of it did yet. */
    s->synced_seq = last;
    return 0;
}

/* ---- deleting segments: retention and the cap ---- */

/* The oldest segment may be deleted: it is not the active one, and every
 * record in it is confirmed. */
static int first_deletable_locked(const struct spool *s)
{
    return s->nsegs > 1 && s->segs[0].last_seq <= atomic_load(&s->confirmed_seq);
}

/* Deletes the oldest segment; a cursor still reading it keeps its open
 * descriptor. Returns 0, or -1 (logged) when it stays. */
static int delete_first_locked(struct spool *s)
{
    char name[SEG_NAME_SIZE], tmp[128];
    seg_name(name, s->segs[0].first_seq);
    if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT) {
        log_warn("spool %s: cannot delete %s: %s", s->dir, name, errstr(errno, tmp, sizeof(tmp)));
        return -1;
    }
    s->bytes -= s->segs[0].size;
    s->nsegs--;
    memmove(s->segs, s->segs + 1, s->nsegs * sizeof(*s->segs));
    return 0;
}

/* Deletes the confirmed segments that retention does not keep. It stops at
 * the first one it keeps, so it costs nothing when nothing is due. */
static void trim_locked(struct spool *s, int64_t now_us)
{
    while (first_deletable_locked(s) &&
           (s->retain_us == 0 || s->segs[0].last_time_us < now_us - s->retain_us))
        if (delete_first_locked(s) < 0)
            break;
}

/* Bytes of the fully confirmed segments among the first `limit`; they are
 * a prefix, since segments are in seq order. */
static uint64_t confirmed_bytes_locked(const struct spool *s, size_t limit)
{
    uint64_t confirmed = atomic_load(&s->confirmed_seq), sum = 0;
    for (size_t i = 0; i < limit && s->segs[i].last_seq <= confirmed; i++)
        sum += s->segs[i].size;
    return sum;
}

static uint64_t unconfirmed_bytes_locked(const struct spool *s)
{
    return s->bytes - confirmed_bytes_locked(s, s->nsegs);
}

/*
 * Recomputes the full state after appends, confirms or trims changed the
 * bytes, and logs each change once. The walk over the segments is only
 * needed near the cap: below it, the unconfirmed bytes are below it too.
 */
static void full_update_locked(struct spool *s)
{
    if (s->max_bytes == 0)
        return;
    uint64_t unconfirmed = s->bytes >= s->max_bytes ? unconfirmed_bytes_locked(s) : 0;
    int full = unconfirmed >= s->max_bytes;
    if (full == atomic_load(&s->full))
        return;
    atomic_store(&s->full, full);
    if (full)
        log_warn("spool %s: full: %" PRIu64 " bytes unconfirmed reach the cap of %" PRIu64
                 " bytes; %s",
                 s->dir, unconfirmed, s->max_bytes,
                 s->full_policy == SPOOL_FULL_REFUSE ? "intercepted calls are refused (full=refuse)"
                                                     : "new events are skipped (full=skip)");
    else
        log_info("spool %s: no longer full: %" PRIu64
                 " bytes unconfirmed, under the cap of %" PRIu64 " bytes",
                 s->dir, unconfirmed_bytes_locked(s), s->max_bytes);
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
 * One sync round: fdatasyncs the active segment without holding the lock,
 * so that appends go on meanwhile. Records in earlier segments were synced
 * when their segment was sealed, so the round covers everything written
 * before it started. It syncs a dup of wfd: a rotation may close wfd
 * meanwhile. Returns 0 or the errno.
 */
static int sync_round_locked(struct spool *s)
{
    uint64_t upto = atomic_load(&s->last_seq);
    int fd = dup(s->wfd);
    int err = fd < 0 ? errno : 0;
    s->syncing = 1;
    pthread_mutex_unlock(&s->lock);
    if (fd >= 0) {
        err = datasync(s, fd);
        close(fd);
    }
    pthread_mutex_lock(&s->lock);
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

/* After a segment file was created: without its directory entry on disk,
 * a machine crash loses the whole file whatever its fdatasyncs said.
 * Returns 0, or -1 (errno). */
static int sync_created_locked(struct spool *s)
{
    if (s->fsync == SPOOL_FSYNC_OFF)
        return 0;
    return fsync(s->dirfd);
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
 * end up inside a segment that is sealed and read to its file size. */
static void trim_tail_locked(struct spool *s)
{
    if (!s->tail_dirty || s->wfd < 0 || s->nsegs == 0)
        return;
    if (ftruncate(s->wfd, (off_t)s->segs[s->nsegs - 1].size) == 0)
        s->tail_dirty = 0;
}

/* Syncs what the active segment holds that is not on disk yet, if the
 * fsync mode wants it: rounds only ever sync the active segment, so this is
 * the last chance for the records in it. `what` names the moment for the
 * error log. */
static void sync_active_locked(struct spool *s, const char *what)
{
    const struct segment *a = &s->segs[s->nsegs - 1];
    if (s->fsync == SPOOL_FSYNC_OFF || a->last_seq <= s->synced_seq)
        return;
    int err = datasync(s, s->wfd);
    sync_done_locked(s, a->last_seq, err);
    if (err != 0)
        sync_failed(s, what, err);
}

/* Closes the active segment for good (at rotation and at close). */
static void seal_active_locked(struct spool *s, const char *what)
{
    trim_tail_locked(s);
    if (s->tail_dirty)
        log_error("spool %s: could not trim a failed write; the segment before the next one "
                  "holds garbage at its end",
                  s->dir);
    sync_active_locked(s, what);
    close(s->wfd);
    s->wfd = -1;
}

/* Starts a new active segment whose first record will be `seq`. */
static int rotate_locked(struct spool *s, uint64_t seq)
{
    char name[SEG_NAME_SIZE];
    seg_name(name, seq);
    int fd = openat(s->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (sync_created_locked(s) < 0) {
        /* Take it back, so that the next append tries the whole thing
         * again instead of writing into a file that may not survive. */
        int e = errno;
        unlinkat(s->dirfd, name, 0);
        close(fd);
        errno = e;
        return -1;
    }
    if (s->wfd >= 0)
        seal_active_locked(s, "fdatasync of a full segment");
    segs_push(s, seq);
    s->wfd = fd;
    s->tail_dirty = 0;
    s->force_rotate = 0;
    return 0;
}

static int need_rotate_locked(const struct spool *s, size_t len)
{
    if (s->nsegs == 0 || s->wfd < 0 || s->force_rotate)
        return 1;
    const struct segment *a = &s->segs[s->nsegs - 1];
    return a->size > 0 && a->size + len > s->segment_bytes;
}

/* The active segment holds records, all of them confirmed. */
static int active_confirmed_locked(const struct spool *s)
{
    if (s->nsegs == 0)
        return 0;
    const struct segment *a = &s->segs[s->nsegs - 1];
    return a->size > 0 && a->last_seq <= atomic_load(&s->confirmed_seq);
}

/*
 * With a cap, makes room for a record of len bytes, first record `seq`, by
 * deleting the oldest confirmed segments, whatever retention says; when the
 * active segment is all confirmed too, it is sealed so that it can go.
 * Whatever is still over the cap then is unconfirmed, and the caller's
 * full_update_locked() decides. Returns 0, or -1 (errno) when a new segment
 * could not be created.
 */
static int make_room_locked(struct spool *s, size_t len, uint64_t seq)
{
    while (s->max_bytes > 0 && s->bytes + len > s->max_bytes) {
        if (first_deletable_locked(s)) {
            if (delete_first_locked(s) < 0)
                break;
        } else if (active_confirmed_locked(s)) {
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
    pthread_mutex_init(&s->head_lock, NULL);
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
    trim_locked(s, clock_realtime_us());
    full_update_locked(s);
    return 0;
}

struct spool *spool_open(const char *dir, const struct spool_options *opt, char *err, size_t errlen)
{
    struct spool *s = NULL;

    pthread_once(&crc_once, crc_init);
    if (make_dirs(dir) < 0) {
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
    if (s->wfd >= 0)
        seal_active_locked(s, "fdatasync at close"); /* alone now: no lock needed */
    spool_cursor_free(s->head);
    if (s->efd >= 0)
        close(s->efd);
    if (s->dirfd >= 0)
        close(s->dirfd); /* releases the flock */
    pthread_cond_destroy(&s->flush_wake);
    pthread_cond_destroy(&s->synced);
    pthread_mutex_destroy(&s->head_lock);
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
 * Under the lock: makes room under the cap, numbers, seals and writes the
 * record, then syncs it as the fsync mode says. Returns 0; SPOOL_APPEND_FULL
 * when the spool is full and skips; or -1 with *what and errno set. *seq is
 * set once the record is written, even when its sync then failed.
 */
static int append_locked(struct spool *s, struct buf *rec, int64_t time_us, uint64_t *seq,
                         const char **what)
{
    uint64_t next = atomic_load(&s->last_seq) + 1;
    if (s->full_policy == SPOOL_FULL_SKIP && atomic_load(&s->full))
        return SPOOL_APPEND_FULL;
    *what = "cannot create a segment";
    if (need_rotate_locked(s, rec->len) && rotate_locked(s, next) < 0)
        return -1;
    if (make_room_locked(s, rec->len, next) < 0)
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
    a->size += rec->len;
    a->last_seq = next;
    a->last_time_us = time_us;
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
    const char *what = "event too large for a record";
    uint64_t seq = 0;
    int rc = -1, e = 0;

    if (s->readonly)
        return -1;
    if (record_build(&rec, ev) == 0) {
        pthread_mutex_lock(&s->lock);
        rc = append_locked(s, &rec, ev->time_us, &seq, &what);
        e = errno;
        pthread_mutex_unlock(&s->lock);
    }
    buf_dispose(&rec);
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
            trim_locked(s, clock_realtime_us());
            full_update_locked(s);
            pthread_mutex_unlock(&s->lock);
        }
    }
    pthread_mutex_unlock(&s->ckpt_lock);
    return rc;
}

void spool_trim(struct spool *s)
{
    if (s->readonly)
        return;
    pthread_mutex_lock(&s->lock);
    trim_locked(s, clock_realtime_us());
    full_update_locked(s);
    pthread_mutex_unlock(&s->lock);
}

/*
 * The time_us of the first unconfirmed event, read through the spool's own
 * cursor, which stays at that record between calls, so that each call reads
 * only what was confirmed since the previous one. 0 when everything is
 * confirmed, or when the record cannot be read (the cursor logs why).
 */
static int64_t oldest_unconfirmed_time(struct spool *s)
{
    struct spool_event ev;
    int64_t t = 0;
    uint64_t want = atomic_load(&s->confirmed_seq) + 1;
    pthread_mutex_lock(&s->head_lock);
    if (want > atomic_load(&s->last_seq))
        goto out;
    if (s->head_seq < want) {
        if (s->head == NULL)
            s->head = spool_cursor_new(s, want - 1);
        s->head->want = want;
        if (spool_cursor_next(s->head, &ev) != 1)
            goto out;
        s->head_seq = ev.seq;
        s->head_time_us = ev.time_us;
    }
    t = s->head_time_us;
out:
    pthread_mutex_unlock(&s->head_lock);
    return t;
}

void spool_get_stats(struct spool *s, struct spool_stats *out)
{
    pthread_mutex_lock(&s->lock);
    out->bytes = s->bytes;
    out->segments = s->nsegs;
    out->retained_bytes = s->nsegs > 0 ? confirmed_bytes_locked(s, s->nsegs - 1) : 0;
    out->first_seq = first_seq_locked(s);
    pthread_mutex_unlock(&s->lock);
    out->last_seq = atomic_load(&s->last_seq);
    out->confirmed_seq = atomic_load(&s->confirmed_seq);
    out->append_errors = atomic_load(&s->append_errors);
    out->full = atomic_load(&s->full);
    out->full_refusals = atomic_load(&s->full_refusals);
    out->fsyncs = atomic_load(&s->fsyncs);
    out->oldest_unconfirmed_time_us = oldest_unconfirmed_time(s);
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
