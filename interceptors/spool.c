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
 *     disk in either a segment or the checkpoint.
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
#include <unistd.h>

#define RECORD_MAGIC     0x4c4f5053u /* the bytes "SPOL" on disk (little endian) */
#define HEADER_LEN       12u         /* magic, length, CRC-32 */
#define FIXED_LEN        22u         /* seq, time_us and the three u16 lengths */
#define SEG_DIGITS       20          /* enough for any uint64_t */
#define SEG_SUFFIX       ".seg"
#define SEG_NAME_SIZE    (SEG_DIGITS + sizeof(SEG_SUFFIX))
#define DEFAULT_SEGMENT  ((size_t)64 << 20)
#define READ_CHUNK       ((size_t)64 << 10)
#define CHECKPOINT       "checkpoint"
#define CHECKPOINT_TMP   "checkpoint.tmp"
#define CHECKPOINT_WORD  "confirmed "
#define ERROR_LOG_GAP_NS 1000000000ull /* at most one append-error line a second */

/*
 * When appends reach the disk. Only OFF exists so far: the page cache
 * decides, so a process crash loses nothing but a machine crash may lose the
 * newest records. The fsync=always|batch option adds values here and fills
 * in sync_appended_locked() and sync_created_locked(); nothing else changes.
 */
enum spool_fsync {
    SPOOL_FSYNC_OFF = 0,
};

struct segment {
    uint64_t first_seq; /* from the file name */
    uint64_t last_seq;  /* first_seq - 1 while the segment is empty */
    uint64_t size;      /* committed bytes: nobody reads past this */
};

struct spool {
    char *dir;
    int dirfd; /* also holds the flock that keeps a second process out */
    int efd;   /* eventfd: readable after appends */
    size_t segment_bytes;
    enum spool_fsync fsync;

    pthread_mutex_t lock; /* guards the fields down to the atomics */
    struct segment *segs;
    size_t nsegs, segs_cap;
    int wfd;          /* the active segment, opened for writing; -1 before the first */
    int tail_dirty;   /* a failed write may have left bytes past the committed end */
    int force_rotate; /* start a new segment at the next append */
    uint64_t bytes;   /* sum of the segments' committed sizes */

    /* Serialises checkpoint writes (the publisher is the only confirmer, but
     * the checkpoint's fsync must not hold up appenders on `lock`). */
    pthread_mutex_t ckpt_lock;

    _Atomic uint64_t last_seq;      /* written under lock, read anywhere */
    _Atomic uint64_t confirmed_seq; /* written under ckpt_lock, read anywhere */
    _Atomic uint64_t append_errors;
    _Atomic uint64_t last_error_log_ns;
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

/* ---- CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), table driven ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? 0xedb88320u ^ (c >> 1) : c >> 1;
        crc_table[i] = c;
    }
}

static uint32_t crc32_of(const void *data, size_t len)
{
    const unsigned char *p = data;
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < len; i++)
        crc = crc_table[(crc ^ p[i]) & 0xff] ^ (crc >> 8);
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

/* ---- durability hooks (see enum spool_fsync) ---- */

static int sync_appended_locked(struct spool *s)
{
    switch (s->fsync) {
    case SPOOL_FSYNC_OFF:
        break;
    }
    return 0;
}

static int sync_created_locked(struct spool *s)
{
    switch (s->fsync) {
    case SPOOL_FSYNC_OFF:
        break;
    }
    return 0;
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

/* ---- segments ---- */

static void segs_push(struct spool *s, uint64_t first_seq)
{
    if (s->nsegs == s->segs_cap) {
        s->segs_cap = s->segs_cap ? s->segs_cap * 2 : 8;
        s->segs = mem_realloc(s->segs, s->segs_cap * sizeof(*s->segs));
    }
    s->segs[s->nsegs++] = (struct segment){first_seq, first_seq - 1, 0};
}

static int seg_cmp(const void *a, const void *b)
{
    uint64_t x = ((const struct segment *)a)->first_seq;
    uint64_t y = ((const struct segment *)b)->first_seq;
    return x < y ? -1 : x > y;
}

/* Fills segs[] from the directory, sorted, with last_seq and size of every
 * segment but the last (which recover_active() scans). */
static int segs_load(struct spool *s)
{
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
    for (size_t i = 0; i + 1 < s->nsegs; i++) {
        char name[SEG_NAME_SIZE];
        struct stat st;
        seg_name(name, s->segs[i].first_seq);
        if (fstatat(s->dirfd, name, &st, 0) < 0)
            goto out;
        s->segs[i].size = (uint64_t)st.st_size;
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
 * Scans the active segment from its start and keeps the longest run of
 * complete, valid, consecutive records; whatever follows (a record torn by a
 * crash mid-write, or garbage) is truncated away. Sets the segment's size and
 * last_seq. Returns 0, or -1 on an I/O error (errno).
 */
static int recover_active(struct spool *s, struct segment *seg, int fd)
{
    struct seg_reader rd = {fd, BUF_INIT, 0};
    struct stat st;
    const char *why = NULL;
    uint64_t off = 0, expect = seg->first_seq;
    int rc = -1;

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
        if (r.seq != expect)
            break;
        off += total;
        expect++;
    }
    if (off < size) {
        char name[SEG_NAME_SIZE];
        seg_name(name, seg->first_seq);
        log_warn("spool %s: %s: %s at offset %" PRIu64 "; dropping the last %" PRIu64 " bytes",
                 s->dir, name, why, off, size - off);
        if (ftruncate(fd, (off_t)off) < 0 || fsync(fd) < 0)
            goto out;
    }
    seg->size = off;
    seg->last_seq = expect - 1;
    s->bytes += off;
    rc = 0;
out:
    buf_dispose(&rd.win);
    return rc;
}

/* Deletes the segments whose records are all confirmed, never the active
 * one. A cursor still reading one keeps its open descriptor. */
static void delete_confirmed_locked(struct spool *s)
{
    uint64_t confirmed = atomic_load(&s->confirmed_seq);
    size_t n = 0;
    while (n + 1 < s->nsegs && s->segs[n].last_seq <= confirmed) {
        char name[SEG_NAME_SIZE], tmp[128];
        seg_name(name, s->segs[n].first_seq);
        if (unlinkat(s->dirfd, name, 0) < 0 && errno != ENOENT) {
            log_warn("spool %s: cannot delete %s: %s", s->dir, name,
                     errstr(errno, tmp, sizeof(tmp)));
            break;
        }
        s->bytes -= s->segs[n].size;
        n++;
    }
    if (n == 0)
        return;
    memmove(s->segs, s->segs + n, (s->nsegs - n) * sizeof(*s->segs));
    s->nsegs -= n;
}

/* Cuts bytes a failed write left past the committed end, so they can never
 * end up inside a segment that is sealed and read to its file size. */
static void trim_tail_locked(struct spool *s)
{
    if (!s->tail_dirty || s->wfd < 0 || s->nsegs == 0)
        return;
    if (ftruncate(s->wfd, (off_t)s->segs[s->nsegs - 1].size) == 0)
        s->tail_dirty = 0;
}

/* Starts a new active segment whose first record will be `seq`. */
static int rotate_locked(struct spool *s, uint64_t seq)
{
    char name[SEG_NAME_SIZE];
    seg_name(name, seq);
    int fd = openat(s->dirfd, name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    if (fd < 0)
        return -1;
    if (s->wfd >= 0) {
        trim_tail_locked(s);
        if (s->tail_dirty)
            log_error("spool %s: could not trim a failed write; the segment before %s holds "
                      "garbage at its end",
                      s->dir, name);
        close(s->wfd);
    }
    segs_push(s, seq);
    s->wfd = fd;
    s->tail_dirty = 0;
    s->force_rotate = 0;
    return sync_created_locked(s);
}

static int need_rotate_locked(const struct spool *s, size_t len)
{
    if (s->nsegs == 0 || s->wfd < 0 || s->force_rotate)
        return 1;
    const struct segment *a = &s->segs[s->nsegs - 1];
    return a->size > 0 && a->size + len > s->segment_bytes;
}

/* ---- open and close ---- */

static int open_active(struct spool *s)
{
    char name[SEG_NAME_SIZE];
    struct segment *a = &s->segs[s->nsegs - 1];
    seg_name(name, a->first_seq);
    int fd = openat(s->dirfd, name, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return -1;
    if (recover_active(s, a, fd) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    s->wfd = fd;
    return 0;
}

/* Everything after the directory is open and locked: the eventfd, the
 * checkpoint, the segments and their recovery. */
static int load_state(struct spool *s, char *err, size_t errlen)
{
    uint64_t confirmed = 0;
    if ((s->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)) < 0) {
        set_err(err, errlen, s->dir, "eventfd", errno);
        return -1;
    }
    if (checkpoint_read(s, &confirmed) < 0) {
        set_err(err, errlen, s->dir, "cannot read " CHECKPOINT, errno);
        return -1;
    }
    unlinkat(s->dirfd, CHECKPOINT_TMP, 0); /* a crash between write and rename */
    if (segs_load(s) < 0) {
        set_err(err, errlen, s->dir, "cannot list segments", errno);
        return -1;
    }
    if (s->nsegs > 0 && open_active(s) < 0) {
        set_err(err, errlen, s->dir, "cannot recover the last segment", errno);
        return -1;
    }
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
    delete_confirmed_locked(s);
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
    s = mem_calloc(1, sizeof(*s));
    s->dir = mem_strdup(dir);
    s->dirfd = s->efd = s->wfd = -1;
    s->segment_bytes = opt != NULL && opt->segment_bytes > 0 ? opt->segment_bytes : DEFAULT_SEGMENT;
    s->fsync = SPOOL_FSYNC_OFF;
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->ckpt_lock, NULL);
    atomic_init(&s->notified, 0);

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
    return s;
fail:
    spool_close(s);
    return NULL;
}

void spool_close(struct spool *s)
{
    if (s == NULL)
        return;
    if (s->wfd >= 0) {
        trim_tail_locked(s);
        close(s->wfd);
    }
    if (s->efd >= 0)
        close(s->efd);
    if (s->dirfd >= 0)
        close(s->dirfd); /* releases the flock */
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
    uint64_t now = clock_monotonic_ns();
    uint64_t last = atomic_load(&s->last_error_log_ns);
    /* Rate-limited: a full disk fails every append, and the log must not
     * become the next thing that fills it. */
    if (last != 0 && now - last < ERROR_LOG_GAP_NS)
        return;
    if (!atomic_compare_exchange_strong(&s->last_error_log_ns, &last, now))
        return;
    log_error("spool %s: append failed: %s%s%s (%" PRIu64 " failed appends so far)", s->dir, what,
              e != 0 ? ": " : "", e != 0 ? errstr(e, tmp, sizeof(tmp)) : "", count);
}

/* Under the lock: numbers, seals and writes the record. Returns the seq, or
 * 0 with *what and errno set. */
static uint64_t append_locked(struct spool *s, struct buf *rec, const char **what)
{
    uint64_t seq = atomic_load(&s->last_seq) + 1;
    *what = "cannot create a segment";
    if (need_rotate_locked(s, rec->len) && rotate_locked(s, seq) < 0)
        return 0;
    record_seal(rec->data, rec->len, seq);
    struct segment *a = &s->segs[s->nsegs - 1];
    *what = "write";
    if (write_full_at(s->wfd, rec->data, rec->len, a->size) < 0) {
        int e = errno;
        s->tail_dirty = 1;
        trim_tail_locked(s);
        errno = e;
        return 0;
    }
    a->size += rec->len;
    a->last_seq = seq;
    s->bytes += rec->len;
    atomic_store(&s->last_seq, seq);
    *what = "sync";
    if (sync_appended_locked(s) < 0)
        return 0;
    return seq;
}

int spool_append(struct spool *s, struct spool_event *ev)
{
    struct buf rec = BUF_INIT;
    const char *what = "event too large for a record";
    uint64_t seq = 0;
    int e = 0;

    if (record_build(&rec, ev) == 0) {
        pthread_mutex_lock(&s->lock);
        seq = append_locked(s, &rec, &what);
        e = errno;
        pthread_mutex_unlock(&s->lock);
    }
    buf_dispose(&rec);
    if (seq == 0) {
        append_failed(s, what, e);
        return -1;
    }
    notify(s);
    ev->seq = seq;
    return 0;
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

int spool_confirm(struct spool *s, uint64_t seq)
{
    int rc = 0;
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
            delete_confirmed_locked(s);
            pthread_mutex_unlock(&s->lock);
        }
    }
    pthread_mutex_unlock(&s->ckpt_lock);
    return rc;
}

void spool_get_stats(struct spool *s, struct spool_stats *out)
{
    pthread_mutex_lock(&s->lock);
    out->bytes = s->bytes;
    out->segments = s->nsegs;
    pthread_mutex_unlock(&s->lock);
    out->last_seq = atomic_load(&s->last_seq);
    out->confirmed_seq = atomic_load(&s->confirmed_seq);
    out->append_errors = atomic_load(&s->append_errors);
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

/* Under the lock (so the segment cannot be deleted meanwhile): opens
 * segment i for the cursor. Returns 1, or -1 (logged). */
static int cursor_open_locked(struct spool_cursor *c, size_t i)
{
    char name[SEG_NAME_SIZE], tmp[128];
    const struct segment *g = &c->s->segs[i];
    seg_name(name, g->first_seq);
    int fd = openat(c->s->dirfd, name, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        log_error("spool %s: cannot open %s: %s", c->s->dir, name, errstr(errno, tmp, sizeof(tmp)));
        return -1;
    }
    reader_reset(&c->rd, fd);
    c->seg_first = g->first_seq;
    c->off = 0;
    c->end = g->size;
    return 1;
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
