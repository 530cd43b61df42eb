/*
 * spool.c: order, concurrency, rotation, confirmation and deletion,
 * persistence across reopen, recovery from torn or corrupt files, the fsync
 * modes, the cap, retention, the pin, the stats, and read-only opens beside
 * a running writer.
 *
 * This file defines fsync(), fdatasync() and unlinkat(), which take the C
 * library's place in the whole unit test binary: they pass straight through
 * unless a test here arms them (see "slow I/O outside the lock").
 */
#include "unit.h"
#include "interceptors/spool.h"
#include "scratch.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ---- */

/* Each test's spool directory, fresh inside the test case's scratch root,
 * which the runner's process removes whatever happens in the test. */
static char tmpdir[64];
static char log_path[80];

static void make_root(void)
{
    scratch_root_make("spool");
}

static void make_tmpdir(void)
{
    scratch_dir("spool", tmpdir, sizeof(tmpdir));
    snprintf(log_path, sizeof(log_path), "%s.log", tmpdir);
}

static struct spool *open_spool(size_t segment_bytes)
{
    char err[256];
    struct spool_options opt = {.segment_bytes = segment_bytes};
    struct spool *s = spool_open(tmpdir, &opt, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    return s;
}

/* Appends an event whose id, key and body all name `n`. */
static uint64_t append_numbered(struct spool *s, unsigned n)
{
    char id[32], key[32], body[64];
    snprintf(id, sizeof(id), "id-%u", n);
    snprintf(key, sizeof(key), "key.%u", n);
    int len = snprintf(body, sizeof(body), "{\"n\":%u}", n);
    struct spool_event ev = {0, 1000 + n, id, "type.t", key, body, (size_t)len};
    ck_assert_int_eq(spool_append(s, &ev), 0);
    return ev.seq;
}

/* Reads the next event and checks it is the one append_numbered(n) wrote. */
static void expect_numbered(struct spool_cursor *c, uint64_t seq, unsigned n)
{
    char id[32], key[32], body[64];
    struct spool_event ev;
    snprintf(id, sizeof(id), "id-%u", n);
    snprintf(key, sizeof(key), "key.%u", n);
    int len = snprintf(body, sizeof(body), "{\"n\":%u}", n);
    ck_assert_int_eq(spool_cursor_next(c, &ev), 1);
    ck_assert_uint_eq(ev.seq, seq);
    ck_assert_int_eq(ev.time_us, 1000 + n);
    ck_assert_str_eq(ev.id, id);
    ck_assert_str_eq(ev.type, "type.t");
    ck_assert_str_eq(ev.key, key);
    ck_assert_uint_eq(ev.body_len, (size_t)len);
    ck_assert_int_eq(memcmp(ev.body, body, (size_t)len), 0);
}

static int name_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The segment files on disk, sorted; returns how many (at most max). */
static size_t list_segments(char names[][128], size_t max)
{
    char *tmp[256];
    size_t n = 0;
    DIR *d = opendir(tmpdir);
    ck_assert_ptr_nonnull(d);
    for (struct dirent *de; (de = readdir(d)) != NULL;) {
        size_t len = strlen(de->d_name);
        if (len > 4 && strcmp(de->d_name + len - 4, ".seg") == 0 && n < 256)
            tmp[n++] = strdup(de->d_name);
    }
    closedir(d);
    qsort(tmp, n, sizeof(tmp[0]), name_cmp);
    for (size_t i = 0; i < n; i++) {
        if (i < max)
            snprintf(names[i], 128, "%s/%s", tmpdir, tmp[i]);
        free(tmp[i]);
    }
    return n;
}

static off_t file_size(const char *path)
{
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    return st.st_size;
}

/* ---- order and basics ---- */

START_TEST(append_then_read_in_order)
{
    struct spool *s = open_spool(0);
    struct spool_event ev;
    ck_assert_uint_eq(spool_last_seq(s), 0);
    for (unsigned i = 1; i <= 100; i++)
        ck_assert_uint_eq(append_numbered(s, i), i);
    ck_assert_uint_eq(spool_last_seq(s), 100);

    struct spool_cursor *c = spool_cursor_new(s, 0);
    for (unsigned i = 1; i <= 100; i++)
        expect_numbered(c, i, i);
    ck_assert_int_eq(spool_cursor_next(c, &ev), 0);
    /* Caught up, then more arrives: the same cursor sees it. */
    append_numbered(s, 101);
    expect_numbered(c, 101, 101);
    ck_assert_int_eq(spool_cursor_next(c, &ev), 0);
    spool_cursor_free(c);

    /* A cursor positioned after a seq starts right after it. */
    c = spool_cursor_new(s, 57);
    expect_numbered(c, 58, 58);
    spool_cursor_free(c);

    struct spool_stats st;
    spool_get_stats(s, &st);
    ck_assert_uint_eq(st.last_seq, 101);
    ck_assert_uint_eq(st.confirmed_seq, 0);
    ck_assert_uint_eq(st.segments, 1);
    ck_assert_uint_gt(st.bytes, 0);
    ck_assert_uint_eq(st.append_errors, 0);
    spool_close(s);
}
END_TEST

START_TEST(empty_spool_reads_nothing)
{
    struct spool *s = open_spool(0);
    struct spool_event ev;
    struct spool_cursor *c = spool_cursor_new(s, 0);
    ck_assert_int_eq(spool_cursor_next(c, &ev), 0);
    append_numbered(s, 1);
    expect_numbered(c, 1, 1);
    spool_cursor_free(c);
    spool_close(s);
    spool_close(NULL);
}
END_TEST

START_TEST(large_and_empty_bodies_round_trip)
{
    struct spool *s = open_spool(0);
    size_t big = 3u << 20;
    char *body = malloc(big);
    for (size_t i = 0; i < big; i++)
        body[i] = (char)(i * 31 + 7);
    struct spool_event a = {0, 1, "a", "t", "k", body, big};
    struct spool_event b = {0, 2, "b", "", "", "", 0};
    ck_assert_int_eq(spool_append(s, &a), 0);
    ck_assert_int_eq(spool_append(s, &b), 0);

    struct spool_event ev;
    struct spool_cursor *c = spool_cursor_new(s, 0);
    ck_assert_int_eq(spool_cursor_next(c, &ev), 1);
    ck_assert_uint_eq(ev.body_len, big);
    ck_assert_int_eq(memcmp(ev.body, body, big), 0);
    ck_assert_int_eq(spool_cursor_next(c, &ev), 1);
    ck_assert_str_eq(ev.id, "b");
    ck_assert_str_eq(ev.type, "");
    ck_assert_uint_eq(ev.body_len, 0);
    spool_cursor_free(c);
    free(body);
    spool_close(s);
}
END_TEST

START_TEST(too_long_id_is_refused)
{
    struct spool *s = open_spool(0);
    char *id = malloc(70000);
    memset(id, 'x', 69999);
    id[69999] = '\0';
    struct spool_event ev = {0, 1, id, "t", "k", "{}", 2};
    ck_assert_int_eq(spool_append(s, &ev), -1);
    struct spool_stats st;
    spool_get_stats(s, &st);
    ck_assert_uint_eq(st.append_errors, 1);
    ck_assert_uint_eq(st.last_seq, 0);
    ck_assert_uint_eq(append_numbered(s, 1), 1); /* the failed one took no seq */
    free(id);
    spool_close(s);
}
END_TEST

START_TEST(notify_fd_becomes_readable_after_append)
{
    struct spool *s = open_spool(0);
    struct pollfd pfd = {spool_notify_fd(s), POLLIN, 0};
    ck_assert_int_eq(poll(&pfd, 1, 0), 0);
    append_numbered(s, 1);
    append_numbered(s, 2);
    ck_assert_int_eq(poll(&pfd, 1, 0), 1);
    spool_notify_drain(s);
    ck_assert_int_eq(poll(&pfd, 1, 0), 0);
    append_numbered(s, 3);
    ck_assert_int_eq(poll(&pfd, 1, 0), 1);
    spool_close(s);
}
END_TEST

struct slow_writer {
    struct spool *s;
    unsigned n;
};

static void *slow_writer_main(void *arg)
{
    struct slow_writer *w = arg;
    for (unsigned i = 1; i <= w->n; i++) {
        append_numbered(w->s, i);
        if (i % 7 == 0)
            usleep(i % 3 == 0 ? 300 : 20);
    }
    return NULL;
}

/* The publisher's pattern: read until caught up, poll the notify fd, drain,
 * read again. A lost wake-up would leave poll waiting forever. */
START_TEST(notifications_are_never_lost)
{
    struct spool *s = open_spool(0);
    struct slow_writer w = {s, 3000};
    pthread_t t;
    ck_assert_int_eq(pthread_create(&t, NULL, slow_writer_main, &w), 0);
    struct spool_cursor *c = spool_cursor_new(s, 0);
    struct pollfd pfd = {spool_notify_fd(s), POLLIN, 0};
    struct spool_event ev;
    unsigned seen = 0;
    for (;;) {
        while (spool_cursor_next(c, &ev) == 1)
            ck_assert_uint_eq(ev.seq, ++seen);
        if (seen == w.n)
            break;
        ck_assert_msg(poll(&pfd, 1, 2000) == 1, "lost wake-up after seq %u", seen);
        spool_notify_drain(s);
    }
    pthread_join(t, NULL);
    spool_cursor_free(c);
    spool_close(s);
}
END_TEST

/* ---- the on-disk format, as spool.h documents it ---- */

/* CRC-32 bit by bit (not spool.c's table), so the two check each other. */
static uint32_t crc32_bitwise(const unsigned char *p, size_t n)
{
    uint32_t crc = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        crc ^= p[i];
        for (int k = 0; k < 8; k++)
            crc = (crc >> 1) ^ (0xedb88320u & (0u - (crc & 1)));
    }
    return ~crc;
}

static uint64_t le(const unsigned char *p, int n)
{
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void put_le(unsigned char *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

#define RECORD_MAGIC 0x4c4f5053u /* "SPOL", the value spool.c writes */

START_TEST(records_follow_the_documented_format)
{
    char names[8][128];
    unsigned char raw[256];
    ck_assert_uint_eq(crc32_bitwise((const unsigned char *)"123456789", 9), 0xcbf43926u);

    /* Written by the spool, read by hand. */
    struct spool *s = open_spool(0);
    struct spool_event ev = {0, -5, "id1", "ty", "key", "BODY", 4};
    ck_assert_int_eq(spool_append(s, &ev), 0);
    spool_close(s);
    ck_assert_uint_eq(list_segments(names, 8), 1);
    ck_assert_ptr_nonnull(strstr(names[0], "/00000000000000000001.seg"));
    FILE *f = fopen(names[0], "rb");
    size_t n = fread(raw, 1, sizeof(raw), f);
    fclose(f);
    ck_assert_uint_eq(n, 12 + 22 + 3 + 2 + 3 + 4);
    ck_assert_uint_eq(le(raw, 4), RECORD_MAGIC);
    ck_assert_uint_eq(le(raw + 4, 4), n - 12);
    ck_assert_uint_eq(le(raw + 8, 4), crc32_bitwise(raw + 12, n - 12));
    ck_assert_uint_eq(le(raw + 12, 8), 1);
    ck_assert_int_eq((int64_t)le(raw + 20, 8), -5);
    ck_assert_uint_eq(le(raw + 28, 2), 3);
    ck_assert_uint_eq(le(raw + 30, 2), 2);
    ck_assert_uint_eq(le(raw + 32, 2), 3);
    ck_assert_int_eq(memcmp(raw + 34, "id1tykeyBODY", 12), 0);

    /* Written by hand, read by the spool: a second record, seq 2. */
    static const char strings[] = "id2t2k2payload";
    size_t rest = 22 + strlen(strings);
    unsigned char rec[128];
    put_le(rec, RECORD_MAGIC, 4);
    put_le(rec + 4, rest, 4);
    put_le(rec + 12, 2, 8);
    put_le(rec + 20, 77, 8);
    put_le(rec + 28, 3, 2);
    put_le(rec + 30, 2, 2);
    put_le(rec + 32, 2, 2);
    memcpy(rec + 34, strings, strlen(strings));
    put_le(rec + 8, crc32_bitwise(rec + 12, rest), 4);
    f = fopen(names[0], "ab");
    ck_assert_uint_eq(fwrite(rec, 1, 12 + rest, f), 12 + rest);
    fclose(f);

    s = open_spool(0);
    ck_assert_uint_eq(spool_last_seq(s), 2);
    struct spool_cursor *c = spool_cursor_new(s, 1);
    ck_assert_int_eq(spool_cursor_next(c, &ev), 1);
    ck_assert_uint_eq(ev.seq, 2);
    ck_assert_int_eq(ev.time_us, 77);
    ck_assert_str_eq(ev.id, "id2");
    ck_assert_str_eq(ev.type, "t2");
    ck_assert_str_eq(ev.key, "k2");
    ck_assert_uint_eq(ev.body_len, 7);
    ck_assert_int_eq(memcmp(ev.body, "payload", 7), 0);
    spool_cursor_free(c);
    spool_close(s);
}
END_TEST

/* ---- opening ---- */

START_TEST(open_creates_missing_directories)
{
    char path[128], err[256];
    snprintf(path, sizeof(path), "%s/a/b/c", tmpdir);
    struct spool *s = spool_open(path, NULL, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    append_numbered(s, 1);
    spool_close(s);
    struct stat st;
    ck_assert_int_eq(stat(path, &st), 0);
    ck_assert(S_ISDIR(st.st_mode));
}
END_TEST

START_TEST(open_reports_why_it_cannot_create)
{
    char file[128], path[160], err[256], want[200];
    snprintf(file, sizeof(file), "%s/plainfile", tmpdir);
    FILE *f = fopen(file, "w");
    ck_assert_ptr_nonnull(f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/sub", file);
    ck_assert_ptr_null(spool_open(path, NULL, err, sizeof(err)));
    snprintf(want, sizeof(want), "spool %s: cannot create: Not a directory", path);
    ck_assert_str_eq(err, want);
}
END_TEST

START_TEST(second_open_of_the_same_dir_is_refused)
{
    char err[256];
    struct spool *s = open_spool(0);
    ck_assert_ptr_null(spool_open(tmpdir, NULL, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "in use by another process"));
    spool_close(s);
    s = open_spool(0);
    spool_close(s);
}
END_TEST

/* ---- threads ---- */

#define THREADS    8
#define PER_THREAD 2000

struct writer {
    struct spool *s;
    unsigned id;
    uint64_t seqs[PER_THREAD];
};

/* The body says who wrote it and a pad whose length and bytes follow from
 * that, so a reader can tell a whole record from a mangled one. */
static size_t writer_body(char *out, size_t cap, unsigned w, unsigned i)
{
    int n = snprintf(out, cap, "w=%u i=%u ", w, i);
    size_t pad = (size_t)((w * 7919u + i * 104729u) % 900u);
    memset(out + n, 'a' + (int)((w + i) % 26), pad);
    return (size_t)n + pad;
}

static void *writer_main(void *arg)
{
    struct writer *w = arg;
    char body[1024], id[32];
    for (unsigned i = 0; i < PER_THREAD; i++) {
        size_t len = writer_body(body, sizeof(body), w->id, i);
        snprintf(id, sizeof(id), "%u/%u", w->id, i);
        struct spool_event ev = {0, (int64_t)i, id, "t", "k", body, len};
        if (spool_append(w->s, &ev) != 0)
            return (void *)1;
        w->seqs[i] = ev.seq;
    }
    return NULL;
}

static void check_whole(const struct spool_event *ev, unsigned *w, unsigned *i)
{
    char body[1024];
    ck_assert_int_eq(sscanf(ev->id, "%u/%u", w, i), 2);
    size_t len = writer_body(body, sizeof(body), *w, *i);
    ck_assert_uint_eq(ev->body_len, len);
    ck_assert_int_eq(memcmp(ev->body, body, len), 0);
}

START_TEST(concurrent_appends_get_every_seq_once)
{
    struct spool *s = open_spool(64 * 1024);
    static struct writer ws[THREADS];
    pthread_t t[THREADS];
    for (unsigned k = 0; k < THREADS; k++) {
        ws[k].s = s;
        ws[k].id = k;
        ck_assert_int_eq(pthread_create(&t[k], NULL, writer_main, &ws[k]), 0);
    }
    for (unsigned k = 0; k < THREADS; k++) {
        void *rc;
        pthread_join(t[k], &rc);
        ck_assert_ptr_null(rc);
    }
    const uint64_t total = THREADS * PER_THREAD;
    ck_assert_uint_eq(spool_last_seq(s), total);

    /* Each writer saw its own seqs increase; the cursor returns 1..total
     * once each, and each record is the one its writer got that seq for. */
    for (unsigned k = 0; k < THREADS; k++)
        for (unsigned i = 1; i < PER_THREAD; i++)
            ck_assert_uint_gt(ws[k].seqs[i], ws[k].seqs[i - 1]);
    struct spool_cursor *c = spool_cursor_new(s, 0);
    struct spool_event ev;
    for (uint64_t seq = 1; seq <= total; seq++) {
        unsigned w, i;
        ck_assert_int_eq(spool_cursor_next(c, &ev), 1);
        ck_assert_uint_eq(ev.seq, seq);
        check_whole(&ev, &w, &i);
        ck_assert_uint_eq(ws[w].seqs[i], seq);
    }
    ck_assert_int_eq(spool_cursor_next(c, &ev), 0);
    spool_cursor_free(c);
    spool_close(s);
}
END_TEST

START_TEST(reader_never_sees_partial_records_while_writers_append)
{
    struct spool *s = open_spool(256 * 1024);
    static struct writer ws[4];
    pthread_t t[4];
    unsigned next[4] = {0, 0, 0, 0};
    for (unsigned k = 0; k < 4; k++) {
        ws[k].s = s;
        ws[k].id = k;
        ck_assert_int_eq(pthread_create(&t[k], NULL, writer_main, &ws[k]), 0);
    }
    struct spool_cursor *c = spool_cursor_new(s, 0);
    struct spool_event ev;
    uint64_t seen = 0;
    while (seen < 4 * PER_THREAD) {
        int r = spool_cursor_next(c, &ev);
        ck_assert_int_ne(r, -1);
        if (r == 0)
            continue; /* caught up with the writers: spin */
        unsigned w, i;
        ck_assert_uint_eq(ev.seq, seen + 1);
        check_whole(&ev, &w, &i);
        ck_assert_uint_eq(i, next[w]); /* each writer's events in its order */
        next[w]++;
        seen++;
    }
    for (unsigned k = 0; k < 4; k++)
        pthread_join(t[k], NULL);
    ck_assert_int_eq(spool_cursor_next(c, &ev), 0);
    spool_cursor_free(c);
    spool_close(s);
}
END_TEST

/* ---- segments ---- */

START_TEST(rotation_spreads_records_over_segments)
{
    char names[64][128];
    struct spool *s = open_spool(2048);
    struct spool_cursor *c = spool_cursor_new(s, 0);
    for (unsigned i = 1; i <= 300; i++) {
        append_numbered(s, i);
        if (i % 7 == 0) /* read while the writer rotates */
            for (unsigned j = i - 6; j <= i; j++)
                expect_numbered(c, j, j);
    }
    for (unsigned j = 295; j <= 300; j++)
        expect_numbered(c, j, j);
    spool_cursor_free(c);

    struct spool_stats st;
    spool_get_stats(s, &st);
    size_t n = list_segments(names, 64);
    ck_assert_uint_gt(n, 5);
    ck_assert_uint_eq(st.segments, n);
    off_t total = 0;
    for (size_t i = 0; i < n; i++) {
        ck_assert_int_le(file_size(names[i]), 2048);
        total += file_size(names[i]);
    }
    ck_assert_uint_eq(st.bytes, (uint64_t)total);
    /* Named by their first seq. */
    ck_assert_ptr_nonnull(strstr(names[0], "/00000000000000000001.seg"));

    c = spool_cursor_new(s, 0);
    for (unsigned i = 1; i <= 300; i++)
        expect_numbered(c, i, i);
    spool_cursor_free(c);
    spool_close(s);
}
END_TEST

START_TEST(confirm_deletes_old_segments_and_persists)
{
    char names[64][128];
    struct spool *s = open_spool(2048);
    for (unsigned i = 1; i <= 200; i++)
        append_numbered(s, i);
    size_t before = list_segments(names, 64);
    ck_assert_int_eq(spool_confirm(s, 100), 0);
    ck_assert_uint_eq(spool_confirmed_seq(s), 100);
    size_t after = list_segments(names, 64);
    ck_assert_uint_lt(after, before);
    struct spool_stats st;
    spool_get_stats(s, &st);
    ck_assert_uint_eq(st.segments, after);
    /* What is left still holds everything after the confirmed seq. */
    struct spool_cursor *c = spool_cursor_new(s, 100);
    expect_numbered(c, 101, 101);
    spool_cursor_free(c);
    /* Confirming backwards is a no-op; beyond the end is clamped. */
    ck_assert_int_eq(spool_confirm(s, 50), 0);
    ck_assert_uint_eq(spool_confirmed_seq(s), 100);
    spool_close(s);

    s = open_spool(2048);
    ck_assert_uint_eq(spool_confirmed_seq(s), 100);
    ck_assert_uint_eq(spool_last_seq(s), 200);
    c = spool_cursor_new(s, spool_confirmed_seq(s));
    for (unsigned i = 101; i <= 200; i++)
        expect_numbered(c, i, i);
    spool_cursor_free(c);

    ck_assert_int_eq(spool_confirm(s, 1000), 0);
    ck_assert_uint_eq(spool_confirmed_seq(s), 200);
    ck_assert_uint_eq(list_segments(names, 64), 1); /* only the active one stays */
    spool_close(s);

    s = open_spool(2048);
    ck_assert_uint_eq(spool_last_seq(s), 200);
    ck_assert_uint_eq(append_numbered(s, 201), 201);
    spool_close(s);
}
END_TEST

START_TEST(reopen_continues_numbering)
{
    struct spool *s = open_spool(0);
    for (unsigned i = 1; i <= 5; i++)
        append_numbered(s, i);
    spool_close(s);
    s = open_spool(0);
    ck_assert_uint_eq(spool_last_seq(s), 5);
    ck_assert_uint_eq(append_numbered(s, 6), 6);
    struct spool_cursor *c = spool_cursor_new(s, 0);
    for (unsigned i = 1; i <= 6; i++)
        expect_numbered(c, i, i);
    spool_cursor_free(c);
    spool_close(s);
}
END_TEST

START_TEST(numbering_survives_losing_every_segment)
{
    char names[64][128];
    struct spool *s = open_spool(0);
    for (unsigned i = 1; i <= 10; i++)
        append_numbered(s, i);
    ck_assert_int_eq(spool_confirm(s, 10), 0);
    spool_close(s);
    /* The segments vanish (say, restored from a backup without them): the
     * checkpoint alone keeps ids of new events from reusing seqs. */
    size_t n = list_segments(names, 64);
    for (size_t i = 0; i < n; i++)
        ck_assert_int_eq(unlink(names[i]), 0);
    s = open_spool(0);
    ck_assert_uint_eq(spool_last_seq(s), 10);
    ck_assert_uint_eq(append_numbered(s, 11), 11);
    struct spool_cursor *c = spool_cursor_new(s, 10);
    expect_numbered(c, 11, 11);
    spool_cursor_free(c);
    spool_close(s);
}
END_TEST

START_TEST(cursor_survives_deletion_below_confirmed)
{
    struct spool *s = open_spool(1024);
    for (unsigned i = 1; i <= 100; i++)
        append_numbered(s, i);
    struct spool_cursor *c = spool_cursor_new(s, 0);
    for (unsigned i = 1; i <= 5; i++)
        expect_numbered(c, i, i);
    ck_assert_int_eq(spool_confirm(s, 60), 0);

    /* The cursor may still return some confirmed events it had open, but
     * in order, never a corrupt one, and everything after 60 exactly once. */
    struct spool_event ev;
    uint64_t prev = 5, next_unconfirmed = 61;
    int r;
    while ((r = spool_cursor_next(c, &ev)) == 1) {
        ck_assert_uint_gt(ev.seq, prev);
        if (ev.seq > 60) {
            ck_assert_uint_eq(ev.seq, next_unconfirmed);
            next_unconfirmed++;
        }
        prev = ev.seq;
    }
    ck_assert_int_eq(r, 0);
    ck_assert_uint_eq(next_unconfirmed, 101);
    spool_cursor_free(c);
    spool_close(s);
}
END_TEST

/* ---- crash recovery ---- */

START_TEST(torn_tail_is_truncated_on_open)
{
    char names[8][128];
    struct spool *s = open_spool(0);
    for (unsigned i = 1; i <= 10; i++)
        append_numbered(s, i);
    spool_close(s);
    ck_assert_uint_eq(list_segments(names, 8), 1);
    off_t size = file_size(names[0]);
    ck_assert_int_eq(truncate(names[0], size - 5), 0); /* a crash mid-write */

    s = open_spool(0);
    ck_assert_uint_eq(spool_last_seq(s), 9);
    struct spool_cursor *c = spool_cursor_new(s, 0);
    for (unsigned i = 1; i <= 9; i++)
        expect_numbered(c, i, i);
    struct spool_event ev;
    ck_assert_int_eq(spool_cursor_next(c, &ev), 0);
    ck_assert_uint_eq(append_numbered(s, 100), 10);
    expect_numbered(c, 10, 100);
    spool_cursor_free(c);
    spool_close(s);

    s = open_spool(0);
    ck_assert_uint_eq(spool_last_seq(s), 10);
    spool_close(s);
}
END_TEST

START_TEST(torn_header_is_truncated_on_open)
{
    char names[8][128];
    struct spool *s = open_spool(0);
    for (unsigned i = 1; i <= 3; i++)
        append_numbered(s, i);
    spool_close(s);
    list_segments(names, 8);
    int fd = open(names[0], O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "SPOL\x10", 5), 5); /* half a header */
    close(fd);
    s = open_spool(0);
    ck_assert_uint_eq(spool_last_seq(s), 3);
    ck_assert_uint_eq(append_numbered(s, 4), 4);
    spool_close(s);
    s = open_spool(0);
    struct spool_cursor *c = spool_cursor_new(s, 0);
    for (unsigned i = 1; i <= 4; i++)
        expect_numbered(c, i, i);
    spool_cursor_free(c);
    spool_close(s);
}
END_TEST

START_TEST(garbage_tail_is_truncated_on_open)
{
    char names[8][128];
    struct spool *s = open_spool(0);
    for (unsigned i = 1; i <= 10; i++)
        append_numbered(s, i);
    spool_close(s);
    list_segments(names, 8);
    off_t size = file_size(names[0]);
    FILE *f = fopen(names[0], "a");
    ck_assert_ptr_nonnull(f);
    for (int i = 0; i < 37; i++)
        fputc(i * 13, f);
    fclose(f);

    s = open_spool(0);
    ck_assert_uint_eq(spool_last_seq(s), 10);
    ck_assert_int_eq(file_size(names[0]), size);
    /* The next record goes right after the last good one. */
    ck_assert_uint_eq(append_numbered(s, 11), 11);
    spool_close(s);
    s = open_spool(0);
    struct spool_cursor *c = spool_cursor_new(s, 0);
    for (unsigned i = 1; i <= 11; i++)
        expect_numbered(c, i, i);
    spool_cursor_free(c);
    spool_close(s);
}
END_TEST

START_TEST(corrupt_record_in_a_sealed_segment_stops_the_cursor)
{
    char names[64][128];
    struct spool *s = open_spool(1024);
    for (unsigned i = 1; i <= 60; i++)
        append_numbered(s, i);
    spool_close(s);
    ck_assert_uint_gt(list_segments(names, 64), 2);
    off_t size = file_size(names[0]);
    int fd = open(names[0], O_RDWR);
    ck_assert_int_ge(fd, 0);
    char byte;
    ck_assert_int_eq(pread(fd, &byte, 1, size / 2), 1);
    byte = (char)(byte ^ 0x5a);
    ck_assert_int_eq(pwrite(fd, &byte, 1, size / 2), 1);
    close(fd);

    s = open_spool(1024); /* only the last segment is scanned on open */
    ck_assert_uint_eq(spool_last_seq(s), 60);
    struct spool_cursor *c = spool_cursor_new(s, 0);
    struct spool_event ev;
    unsigned good = 0;
    int r;
    while ((r = spool_cursor_next(c, &ev)) == 1) {
        ck_assert_uint_eq(ev.seq, good + 1);
        good++;
    }
    ck_assert_int_eq(r, -1);
    ck_assert_uint_gt(good, 0);
    ck_assert_uint_lt(good, 20);
    ck_assert_int_eq(spool_cursor_next(c, &ev), -1); /* stays stopped */
    spool_cursor_free(c);
    spool_close(s);
}
END_TEST

/* ---- helpers for the options ---- */

static struct spool *open_with(const struct spool_options *opt)
{
    char err[256];
    struct spool *s = spool_open(tmpdir, opt, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    return s;
}

static struct spool *open_readonly(void)
{
    char err[256];
    struct spool *s = spool_open_readonly(tmpdir, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    return s;
}

static struct spool_stats stats_of(struct spool *s)
{
    struct spool_stats st;
    spool_get_stats(s, &st);
    return st;
}

/* Like append_numbered(), at time_us `t`, returning spool_append()'s result
 * instead of insisting on success. */
static int append_at(struct spool *s, unsigned n, int64_t t)
{
    char id[32], key[32], body[64];
    snprintf(id, sizeof(id), "id-%u", n);
    snprintf(key, sizeof(key), "key.%u", n);
    int len = snprintf(body, sizeof(body), "{\"n\":%u}", n);
    struct spool_event ev = {0, t, id, "type.t", key, body, (size_t)len};
    return spool_append(s, &ev);
}

/* The seq in a segment file's name (a path from list_segments()). */
static uint64_t seg_seq(const char *path)
{
    return strtoull(strrchr(path, '/') + 1, NULL, 10);
}

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static double seconds_since(const struct timespec *t0)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)(t.tv_sec - t0->tv_sec) + (double)(t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* The log goes to stderr; these send it to a file for a while, so a test
 * can check what was logged, and how often. */
static int saved_stderr = -1;

static void log_capture_begin(void)
{
    int fd = open(log_path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ck_assert_int_ge(fd, 0);
    fflush(stderr);
    saved_stderr = dup(STDERR_FILENO);
    ck_assert_int_ge(saved_stderr, 0);
    ck_assert_int_ge(dup2(fd, STDERR_FILENO), 0);
    close(fd);
}

/* Ends the capture; returns what was logged (free() it). */
static char *log_capture_end(void)
{
    dup2(saved_stderr, STDERR_FILENO);
    close(saved_stderr);
    FILE *f = fopen(log_path, "r");
    ck_assert_ptr_nonnull(f);
    char *text = calloc(1, 65536);
    size_t n = fread(text, 1, 65535, f);
    text[n] = '\0';
    fclose(f);
    return text;
}

static unsigned count_of(const char *text, const char *needle)
{
    unsigned n = 0;
    for (const char *p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    return n;
}

/* Reads from after_seq to the end; checks the events are first..last, by
 * their seq and the id that append_numbered() or append_at() gave them. */
static void expect_run(struct spool *s, uint64_t after_seq, unsigned first, unsigned last)
{
    char id[32];
    struct spool_event ev;
    struct spool_cursor *c = spool_cursor_new(s, after_seq);
    for (unsigned i = first; i <= last; i++) {
        snprintf(id, sizeof(id), "id-%u", i);
        ck_assert_int_eq(spool_cursor_next(c, &ev), 1);
        ck_assert_uint_eq(ev.seq, i);
        ck_assert_str_eq(ev.id, id);
    }
    ck_assert_int_eq(spool_cursor_next(c, &ev), 0);
    spool_cursor_free(c);
}

/* ---- fsync modes ---- */

/* One appender alone: every append is its own round, and a rotation adds
 * none, since the segment it seals is on disk already. */
START_TEST(fsync_always_syncs_each_append_before_returning)
{
    struct spool_options opt = {.segment_bytes = 1024, .fsync = SPOOL_FSYNC_ALWAYS};
    struct spool *s = open_with(&opt);
    for (unsigned i = 1; i <= 60; i++) {
        append_numbered(s, i);
        ck_assert_uint_eq(stats_of(s).fsyncs, i);
    }
    ck_assert_uint_gt(stats_of(s).segments, 2);
    expect_run(s, 0, 1, 60);
    spool_close(s);
}
END_TEST

#define SYNC_THREADS    8
#define SYNC_PER_THREAD 40

struct sync_writer {
    struct spool *s;
    unsigned id;
    int uncovered; /* appends that returned before any round started after them */
};

static void *sync_writer_main(void *arg)
{
    struct sync_writer *w = arg;
    for (unsigned i = 0; i < SYNC_PER_THREAD; i++) {
        uint64_t before = stats_of(w->s).fsyncs;
        if (append_at(w->s, w->id * 1000 + i, 1) != 0)
            return (void *)1;
        /* The round that covered this record started after it was
         * written, so after `before` was read: whoever led it, the count
         * moved. */
        if (stats_of(w->s).fsyncs <= before)
            w->uncovered++;
    }
    return NULL;
}

START_TEST(fsync_always_group_commit_covers_every_concurrent_append)
{
    struct spool_options opt = {.segment_bytes = 4096, .fsync = SPOOL_FSYNC_ALWAYS};
    struct spool *s = open_with(&opt);
    struct sync_writer ws[SYNC_THREADS];
    pthread_t t[SYNC_THREADS];
    for (unsigned k = 0; k < SYNC_THREADS; k++) {
        ws[k] = (struct sync_writer){s, k + 1, 0};
        ck_assert_int_eq(pthread_create(&t[k], NULL, sync_writer_main, &ws[k]), 0);
    }
    for (unsigned k = 0; k < SYNC_THREADS; k++) {
        void *rc;
        pthread_join(t[k], &rc);
        ck_assert_ptr_null(rc);
        ck_assert_int_eq(ws[k].uncovered, 0);
    }
    const uint64_t total = SYNC_THREADS * SYNC_PER_THREAD;
    struct spool_stats st = stats_of(s);
    ck_assert_uint_eq(st.last_seq, total);
    ck_assert_uint_eq(st.append_errors, 0);
    /* Each round covers at least the record of the appender leading it. */
    ck_assert_uint_ge(st.fsyncs, 1);
    ck_assert_uint_le(st.fsyncs, total);
    struct spool_cursor *c = spool_cursor_new(s, 0);
    struct spool_event ev;
    for (uint64_t seq = 1; seq <= total; seq++) {
        ck_assert_int_eq(spool_cursor_next(c, &ev), 1);
        ck_assert_uint_eq(ev.seq, seq);
    }
    spool_cursor_free(c);
    spool_close(s);
}
END_TEST

START_TEST(fsync_off_never_syncs)
{
    struct spool_options opt = {.segment_bytes = 512, .fsync = SPOOL_FSYNC_OFF};
    struct spool *s = open_with(&opt);
    for (unsigned i = 1; i <= 100; i++)
        append_numbered(s, i);
    ck_assert_int_eq(spool_confirm(s, 50), 0);
    struct spool_stats st = stats_of(s);
    ck_assert_uint_gt(st.segments, 3);
    ck_assert_uint_eq(st.fsyncs, 0);
    spool_close(s);
}
END_TEST

/* Waits up to 5 s for the flusher to have synced `n` times. */
static void wait_for_fsyncs(struct spool *s, uint64_t n)
{
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    while (stats_of(s).fsyncs < n && seconds_since(&t0) < 5)
        usleep(2000);
    ck_assert_uint_ge(stats_of(s).fsyncs, n);
}

START_TEST(fsync_batch_syncs_within_the_interval)
{
    struct spool_options opt = {.fsync = SPOOL_FSYNC_BATCH, .fsync_interval_ms = 20};
    struct spool *s = open_with(&opt);
    ck_assert_uint_eq(stats_of(s).fsyncs, 0); /* nothing to sync, no sync */
    for (unsigned i = 1; i <= 10; i++)
        append_numbered(s, i);
    wait_for_fsyncs(s, 1);
    uint64_t after_first = stats_of(s).fsyncs;
    for (unsigned i = 11; i <= 20; i++)
        append_numbered(s, i);
    wait_for_fsyncs(s, after_first + 1);
    spool_close(s);

    s = open_spool(0);
    ck_assert_uint_eq(spool_last_seq(s), 20);
    expect_run(s, 0, 1, 20);
    spool_close(s);
}
END_TEST

/* With an interval far longer than the test, any append that waited for
 * the flusher would hang; and close must cut the wait short, syncing what
 * is left itself. */
START_TEST(fsync_batch_appends_never_wait_and_close_flushes)
{
    struct spool_options opt = {.fsync = SPOOL_FSYNC_BATCH, .fsync_interval_ms = 600000};
    struct spool *s = open_with(&opt);
    for (unsigned i = 1; i <= 100; i++)
        append_numbered(s, i);
    ck_assert_uint_eq(stats_of(s).fsyncs, 0);
    struct timespec t0;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    spool_close(s);
    ck_assert_double_lt(seconds_since(&t0), 5.0);

    s = open_spool(0);
    ck_assert_uint_eq(spool_last_seq(s), 100);
    expect_run(s, 0, 1, 100);
    spool_close(s);
}
END_TEST

/* ---- the cap ---- */

START_TEST(cap_skip_refuses_once_full_until_confirms_free_room)
{
    struct spool_options opt = {.fsync = SPOOL_FSYNC_OFF, .max_bytes = 4096};
    log_capture_begin();
    struct spool *s = open_with(&opt);
    unsigned ok = 0;
    int rc = 0;
    while (ok < 1000 && (rc = append_at(s, ok + 1, 1000 + ok + 1)) == 0)
        ok++;
    ck_assert_int_eq(rc, SPOOL_APPEND_FULL);
    struct spool_stats st = stats_of(s);
    ck_assert_int_eq(st.full, 1);
    ck_assert_int_eq(spool_is_full(s), 1);
    ck_assert_uint_eq(st.full_refusals, 1);
    ck_assert_uint_eq(st.append_errors, 0);
    /* The append that reached the cap was the last one written. */
    ck_assert_uint_ge(st.bytes, 4096);
    ck_assert_uint_lt(st.bytes, 4096 + 100);
    ck_assert_uint_eq(st.last_seq, ok);
    for (unsigned i = 0; i < 5; i++)
        ck_assert_int_eq(append_at(s, 9999, 1), SPOOL_APPEND_FULL);
    st = stats_of(s);
    ck_assert_uint_eq(st.full_refusals, 6);
    ck_assert_uint_eq(st.last_seq, ok); /* refusals use up no seq */
    expect_run(s, 0, 1, ok);

    /* Confirming a few records in the first segment frees nothing. */
    ck_assert_int_eq(spool_confirm(s, 2), 0);
    ck_assert_int_eq(spool_is_full(s), 1);
    ck_assert_int_eq(spool_confirm(s, ok), 0);
    ck_assert_int_eq(spool_is_full(s), 0);
    ck_assert_int_eq(stats_of(s).full, 0);
    ck_assert_uint_eq(append_numbered(s, ok + 1), ok + 1);
    spool_close(s);

    char *log = log_capture_end();
    ck_assert_uint_eq(count_of(log, "bytes unconfirmed reach the cap of 4096 bytes; new events are "
                                    "skipped (full=skip)"),
                      1);
    ck_assert_uint_eq(count_of(log, "[warn]"), 1);
    ck_assert_uint_eq(count_of(log, "no longer full"), 1);
    free(log);
}
END_TEST

START_TEST(cap_refuse_keeps_appending_and_reports_full)
{
    struct spool_options opt = {
        .fsync = SPOOL_FSYNC_OFF, .max_bytes = 4096, .full = SPOOL_FULL_REFUSE};
    log_capture_begin();
    struct spool *s = open_with(&opt);
    ck_assert_int_eq(spool_is_full(s), 0);
    for (unsigned i = 1; i <= 200; i++)
        append_numbered(s, i);
    struct spool_stats st = stats_of(s);
    ck_assert_int_eq(spool_is_full(s), 1);
    ck_assert_int_eq(st.full, 1);
    ck_assert_uint_gt(st.bytes, 2 * 4096);
    ck_assert_uint_eq(st.full_refusals, 0);
    ck_assert_int_eq(spool_confirm(s, 200), 0);
    ck_assert_int_eq(spool_is_full(s), 0);
    spool_close(s);

    /* Reopened over the cap, it is full from the start. */
    s = open_with(&opt);
    ck_assert_int_eq(spool_is_full(s), 0); /* all confirmed */
    spool_close(s);
    opt.max_bytes = 1024;
    struct spool_options plain = {.fsync = SPOOL_FSYNC_OFF};
    s = open_with(&plain);
    for (unsigned i = 201; i <= 260; i++)
        append_numbered(s, i);
    spool_close(s);
    s = open_with(&opt);
    ck_assert_int_eq(spool_is_full(s), 1);
    spool_close(s);

    char *log = log_capture_end();
    ck_assert_uint_eq(count_of(log, "intercepted calls are refused (full=refuse)"), 2);
    ck_assert_uint_eq(count_of(log, "no longer full"), 1);
    free(log);
}
END_TEST

START_TEST(cap_makes_room_by_deleting_retained_segments_oldest_first)
{
    char names[128][128];
    struct spool_options opt = {.segment_bytes = 512,
                                .fsync = SPOOL_FSYNC_OFF,
                                .max_bytes = 8192,
                                .retain_ms = 3600 * 1000};
    struct spool *s = open_with(&opt);
    for (unsigned i = 1; i <= 60; i++)
        ck_assert_int_eq(append_at(s, i, now_us()), 0);
    size_t before = list_segments(names, 128);
    ck_assert_int_eq(spool_confirm(s, 60), 0);
    /* Retained: confirming deleted nothing. */
    ck_assert_uint_eq(list_segments(names, 128), before);
    struct spool_stats st = stats_of(s);
    ck_assert_uint_gt(st.retained_bytes, 0);
    ck_assert_uint_eq(st.first_seq, 1);

    for (unsigned i = 61; i <= 160; i++)
        ck_assert_int_eq(append_at(s, i, now_us()), 0);
    st = stats_of(s);
    ck_assert_int_eq(st.full, 0);
    ck_assert_uint_le(st.bytes, 8192);
    ck_assert_uint_gt(st.first_seq, 1);
    ck_assert_uint_le(st.first_seq, 61);
    size_t n = list_segments(names, 128);
    ck_assert_uint_eq(seg_seq(names[0]), st.first_seq);
    ck_assert_uint_eq(st.segments, n);
    /* A cursor from before what is left starts at the oldest record left. */
    expect_run(s, 0, (unsigned)st.first_seq, 160);
    spool_close(s);
}
END_TEST

/* Retained segments count against the cap only until an append needs
 * their room: being full is about the unconfirmed bytes alone. */
START_TEST(cap_full_counts_unconfirmed_bytes_only)
{
    struct spool_options opt = {.segment_bytes = 512,
                                .fsync = SPOOL_FSYNC_OFF,
                                .max_bytes = 4096,
                                .retain_ms = 3600 * 1000,
                                .full = SPOOL_FULL_REFUSE};
    struct spool *s = open_with(&opt);
    for (unsigned i = 1; i <= 200; i++)
        ck_assert_int_eq(append_at(s, i, now_us()), 0);
    ck_assert_int_eq(spool_is_full(s), 1);
    ck_assert_int_eq(spool_confirm(s, 200), 0);
    struct spool_stats st = stats_of(s);
    ck_assert_uint_gt(st.bytes, 4096); /* all retained, still on disk */
    ck_assert_uint_gt(st.retained_bytes, 4096 - 512);
    ck_assert_int_eq(st.full, 0);
    ck_assert_int_eq(spool_is_full(s), 0);
    /* The next append makes room. */
    ck_assert_int_eq(append_at(s, 201, now_us()), 0);
    st = stats_of(s);
    ck_assert_uint_le(st.bytes, 4096);
    ck_assert_int_eq(st.full, 0);
    expect_run(s, 0, (unsigned)st.first_seq, 201);
    spool_close(s);
}
END_TEST

/* ---- retention ---- */

START_TEST(retention_deletes_confirmed_segments_once_their_events_are_old)
{
    char names[64][128];
    struct spool_options opt = {
        .segment_bytes = 512, .fsync = SPOOL_FSYNC_OFF, .retain_ms = 3600 * 1000};
    int64_t now = now_us(), old = now - 2 * 3600 * INT64_C(1000000);
    struct spool *s = open_with(&opt);
    for (unsigned i = 1; i <= 30; i++)
        ck_assert_int_eq(append_at(s, i, old + i), 0);
    for (unsigned i = 31; i <= 60; i++)
        ck_assert_int_eq(append_at(s, i, now + i), 0);
    ck_assert_uint_gt(list_segments(names, 64), 6);
    ck_assert_int_eq(spool_confirm(s, 60), 0);

    /* Every segment of old events went; every recent event stayed. */
    size_t n = list_segments(names, 64);
    uint64_t first = spool_first_seq(s);
    ck_assert_uint_gt(first, 1);
    ck_assert_uint_le(first, 31);
    ck_assert_uint_eq(seg_seq(names[0]), first);
    ck_assert_uint_ge(n, 2);
    ck_assert_uint_gt(seg_seq(names[1]), 31); /* the first one kept holds recent events */
    ck_assert_uint_gt(stats_of(s).retained_bytes, 0);
    expect_run(s, 0, (unsigned)first, 60);
    spool_trim(s);
    ck_assert_uint_eq(list_segments(names, 64), n);
    spool_close(s);

    /* Reopened, the times of what is left are recovered as recent. */
    s = open_with(&opt);
    ck_assert_uint_eq(list_segments(names, 64), n);
    spool_close(s);
}
END_TEST

START_TEST(retention_by_time_passing_and_spool_trim)
{
    char names[64][128];
    /* A second of retention: the appends and the first trim take a few
     * milliseconds, so "too young" holds even on a loaded machine. */
    struct spool_options opt = {.segment_bytes = 512, .fsync = SPOOL_FSYNC_OFF, .retain_ms = 1000};
    struct spool *s = open_with(&opt);
    for (unsigned i = 1; i <= 60; i++)
        ck_assert_int_eq(append_at(s, i, now_us()), 0);
    size_t before = list_segments(names, 64);
    ck_assert_int_eq(spool_confirm(s, 60), 0);
    spool_trim(s);
    ck_assert_uint_eq(list_segments(names, 64), before); /* too young to go */
    ck_assert_uint_eq(spool_first_seq(s), 1);
    usleep(1200 * 1000);
    spool_trim(s);
    ck_assert_uint_eq(list_segments(names, 64), 1); /* the active one stays */
    struct spool_stats st = stats_of(s);
    ck_assert_uint_eq(st.retained_bytes, 0);
    ck_assert_uint_eq(st.segments, 1);
    spool_close(s);
}
END_TEST

START_TEST(retention_recovered_on_reopen)
{
    char names[64][128];
    struct spool_options keep = {
        .segment_bytes = 512, .fsync = SPOOL_FSYNC_OFF, .retain_ms = 3600 * 1000};
    int64_t old = now_us() - 2 * 3600 * INT64_C(1000000);
    struct spool *s = open_with(&keep);
    for (unsigned i = 1; i <= 40; i++)
        ck_assert_int_eq(append_at(s, i, old + i), 0);
    spool_close(s);
    s = open_with(&keep);
    for (unsigned i = 41; i <= 60; i++)
        ck_assert_int_eq(append_at(s, i, now_us()), 0);
    ck_assert_int_eq(spool_confirm(s, 60), 0);
    /* The old segments went on confirm, from times recovered on open. */
    uint64_t first = spool_first_seq(s);
    ck_assert_uint_gt(first, 1);
    ck_assert_uint_le(first, 41);
    expect_run(s, 0, (unsigned)first, 60);
    list_segments(names, 64);
    ck_assert_uint_eq(seg_seq(names[0]), first);
    spool_close(s);
}
END_TEST

START_TEST(retain_zero_deletes_on_confirm)
{
    char names[64][128];
    struct spool_options opt = {.segment_bytes = 512, .fsync = SPOOL_FSYNC_OFF};
    struct spool *s = open_with(&opt);
    for (unsigned i = 1; i <= 60; i++)
        ck_assert_int_eq(append_at(s, i, now_us()), 0);
    ck_assert_int_eq(spool_confirm(s, 60), 0);
    ck_assert_uint_eq(list_segments(names, 64), 1);
    ck_assert_uint_eq(stats_of(s).retained_bytes, 0);
    spool_close(s);
}
END_TEST

START_TEST(stats_follow_the_oldest_unconfirmed_event)
{
    struct spool_options opt = {.segment_bytes = 512, .fsync = SPOOL_FSYNC_OFF};
    struct spool *s = open_with(&opt);
    struct spool_stats st = stats_of(s);
    ck_assert_int_eq(st.oldest_unconfirmed_time_us, 0);
    ck_assert_uint_eq(st.first_seq, 0);
    for (unsigned i = 1; i <= 40; i++)
        append_numbered(s, i); /* time_us 1000 + i */
    st = stats_of(s);
    ck_assert_int_eq(st.oldest_unconfirmed_time_us, 1001);
    ck_assert_uint_eq(st.first_seq, 1);
    ck_assert_int_eq(spool_confirm(s, 4), 0);
    ck_assert_int_eq(stats_of(s).oldest_unconfirmed_time_us, 1005);
    ck_assert_int_eq(spool_confirm(s, 33), 0); /* a few segments further */
    ck_assert_int_eq(stats_of(s).oldest_unconfirmed_time_us, 1034);
    ck_assert_int_eq(spool_confirm(s, 40), 0);
    ck_assert_int_eq(stats_of(s).oldest_unconfirmed_time_us, 0);
    spool_close(s);
}
END_TEST

/* ---- read-only ---- */

START_TEST(readonly_reads_the_spool_a_writer_owns)
{
    char err[256], path[128];
    struct spool_options opt = {.segment_bytes = 1024};
    struct spool *w = open_with(&opt);
    for (unsigned i = 1; i <= 100; i++)
        append_numbered(w, i);
    ck_assert_int_eq(spool_confirm(w, 10), 0);

    struct spool *r = open_readonly();
    ck_assert_uint_eq(spool_last_seq(r), 100);
    ck_assert_uint_eq(spool_confirmed_seq(r), 10);
    ck_assert_int_eq(spool_notify_fd(r), -1);
    expect_run(r, 0, 1, 100);
    /* A snapshot: what the writer appends later is not in it. */
    append_numbered(w, 101);
    expect_run(r, 95, 96, 100);
    /* It writes nothing, and the writer keeps working beside it. */
    struct spool_event ev = {0, 1, "x", "t", "k", "{}", 2};
    ck_assert_int_eq(spool_append(r, &ev), -1);
    ck_assert_int_eq(spool_confirm(r, 50), -1);
    spool_trim(r);
    ck_assert_uint_eq(spool_confirmed_seq(r), 10);
    ck_assert_uint_eq(append_numbered(w, 102), 102);
    ck_assert_int_eq(spool_confirm(w, 20), 0);
    spool_close(r);
    expect_run(w, 20, 21, 102);
    spool_close(w);

    snprintf(path, sizeof(path), "%s/missing", tmpdir);
    ck_assert_ptr_null(spool_open_readonly(path, err, sizeof(err)));
    ck_assert_ptr_nonnull(strstr(err, "cannot open: No such file or directory"));
}
END_TEST

START_TEST(readonly_takes_a_torn_last_record_as_the_end)
{
    char names[8][128];
    struct spool *w = open_spool(0);
    for (unsigned i = 1; i <= 10; i++)
        append_numbered(w, i);
    spool_close(w);
    list_segments(names, 8);
    /* The start of an 11th record: a header promising more than follows. */
    unsigned char part[20] = {0};
    put_le(part, RECORD_MAGIC, 4);
    put_le(part + 4, 200, 4);
    int fd = open(names[0], O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, part, sizeof(part)), (ssize_t)sizeof(part));
    close(fd);
    off_t size = file_size(names[0]);

    log_capture_begin();
    struct spool *r = open_readonly();
    ck_assert_uint_eq(spool_last_seq(r), 10);
    expect_run(r, 0, 1, 10);
    spool_close(r);
    char *log = log_capture_end();
    ck_assert_str_eq(log, ""); /* silently */
    free(log);
    ck_assert_int_eq(file_size(names[0]), size); /* and left alone */
}
END_TEST

START_TEST(readonly_skips_segments_deleted_before_the_cursor_gets_there)
{
    char names[64][128];
    struct spool_options opt = {.segment_bytes = 512, .fsync = SPOOL_FSYNC_OFF};
    struct spool *w = open_with(&opt);
    for (unsigned i = 1; i <= 100; i++)
        append_numbered(w, i);
    ck_assert_uint_gt(list_segments(names, 64), 6);

    log_capture_begin();
    struct spool *r = open_readonly();
    struct spool_cursor *c = spool_cursor_new(r, 0);
    expect_numbered(c, 1, 1);
    struct spool_cursor *fresh = spool_cursor_new(r, 0);
    /* The writer confirms and deletes: c has the first segment open and
     * finishes it; the segments after it are gone, and both cursors go on
     * with what is left, each event after 50 exactly once. */
    ck_assert_int_eq(spool_confirm(w, 50), 0);
    uint64_t first_left = spool_first_seq(w);
    ck_assert_uint_gt(first_left, 2);
    struct spool_cursor *cs[2] = {c, fresh};
    for (int k = 0; k < 2; k++) {
        struct spool_event ev;
        uint64_t prev = k == 0 ? 1 : 0, next = first_left;
        int rc;
        while ((rc = spool_cursor_next(cs[k], &ev)) == 1) {
            ck_assert_uint_gt(ev.seq, prev);
            if (ev.seq >= first_left)
                ck_assert_uint_eq(ev.seq, next++);
            prev = ev.seq;
        }
        ck_assert_int_eq(rc, 0);
        ck_assert_uint_eq(next, 101);
    }
    spool_cursor_free(c);
    spool_cursor_free(fresh);
    spool_close(r);
    char *log = log_capture_end();
    ck_assert_str_eq(log, "");
    free(log);
    spool_close(w);
}
END_TEST

/* ---- crashes ---- */

/* A child process appends and dies without closing; the spool reopens
 * with other options and carries on. */
START_TEST(reopen_after_a_crash_with_new_options)
{
    char names[64][128];
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct spool_options first = {.segment_bytes = 1024, .fsync = SPOOL_FSYNC_BATCH};
        char err[256];
        struct spool *s = spool_open(tmpdir, &first, err, sizeof(err));
        for (unsigned i = 1; s != NULL && i <= 50; i++)
            if (append_at(s, i, now_us()) != 0)
                _exit(2);
        _exit(s != NULL ? 0 : 1); /* no spool_close: the lock dies with us */
    }
    int status;
    ck_assert_int_eq(waitpid(pid, &status, 0), pid);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    size_t n = list_segments(names, 64);
    int fd = open(names[n - 1], O_WRONLY | O_APPEND);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, "SPOL\x40\0\0\0junk", 12), 12); /* torn mid-write */
    close(fd);

    struct spool_options next = {.segment_bytes = 1024,
                                 .fsync = SPOOL_FSYNC_ALWAYS,
                                 .max_bytes = 64 * 1024,
                                 .retain_ms = 3600 * 1000,
                                 .full = SPOOL_FULL_REFUSE};
    struct spool *s = open_with(&next);
    ck_assert_uint_eq(spool_last_seq(s), 50);
    for (unsigned i = 51; i <= 60; i++)
        ck_assert_uint_eq(append_numbered(s, i), i);
    struct spool_stats st = stats_of(s);
    ck_assert_uint_eq(st.fsyncs, 10);
    ck_assert_int_eq(spool_confirm(s, 60), 0);
    st = stats_of(s);
    ck_assert_uint_gt(st.retained_bytes, 0);
    ck_assert_int_eq(st.full, 0);
    expect_run(s, 0, 1, 60);
    spool_close(s);

    s = open_spool(0);
    ck_assert_uint_eq(spool_last_seq(s), 60);
    ck_assert_uint_eq(spool_confirmed_seq(s), 60);
    ck_assert_uint_eq(append_numbered(s, 61), 61);
    spool_close(s);
}
END_TEST

/* ---- the pin ---- */

/* Appends at now_us() until the spool refuses; returns how many went in. */
static unsigned fill_until_full(struct spool *s, unsigned from)
{
    unsigned n = from;
    int rc;
    while (n < from + 1000 && (rc = append_at(s, n, now_us())) == 0)
        n++;
    ck_assert_int_eq(rc, SPOOL_APPEND_FULL);
    return n - from;
}

START_TEST(pin_keeps_history_from_retention_and_the_cap)
{
    char names[64][128];
    struct spool_options opt = {.segment_bytes = 512, .fsync = SPOOL_FSYNC_OFF};
    struct spool *s = open_with(&opt);
    ck_assert_uint_eq(spool_max_bytes(s), 0);
    for (unsigned i = 1; i <= 60; i++)
        ck_assert_int_eq(append_at(s, i, now_us()), 0);
    size_t before = list_segments(names, 64);
    ck_assert_uint_gt(before, 4);
    ck_assert_uint_eq(spool_unconfirmed_bytes(s), stats_of(s).bytes);

    /* Retention would delete everything confirmed at once (retain_ms 0). */
    spool_pin(s, 1);
    ck_assert_int_eq(spool_confirm(s, 60), 0);
    ck_assert_uint_eq(spool_unconfirmed_bytes(s), 0);
    spool_trim(s);
    ck_assert_uint_eq(list_segments(names, 64), before);
    expect_run(s, 0, 1, 60);
    /* Moved up: what lies wholly below it may go, the segment holding it
     * stays. */
    spool_pin(s, 30);
    spool_trim(s);
    uint64_t first = spool_first_seq(s);
    ck_assert_uint_gt(first, 1);
    ck_assert_uint_le(first, 30);
    ck_assert_uint_lt(list_segments(names, 64), before);
    expect_run(s, 0, (unsigned)first, 60);
    spool_pin(s, 0);
    spool_trim(s);
    ck_assert_uint_eq(list_segments(names, 64), 1);
    spool_close(s);
}
END_TEST

START_TEST(pin_makes_the_spool_full_when_the_cap_needs_its_room)
{
    struct spool_options opt = {.segment_bytes = 512,
                                .fsync = SPOOL_FSYNC_OFF,
                                .max_bytes = 4096,
                                .retain_ms = 3600 * 1000};
    struct spool *s = open_with(&opt);
    ck_assert_uint_eq(spool_max_bytes(s), 4096);
    for (unsigned i = 1; i <= 40; i++)
        ck_assert_int_eq(append_at(s, i, now_us()), 0);
    spool_pin(s, 1);
    ck_assert_int_eq(spool_confirm(s, 40), 0);

    /* full=skip: the pinned history cannot make room, so appends stop at
     * the cap, with little of it unconfirmed. */
    unsigned went = fill_until_full(s, 41);
    ck_assert_uint_gt(went, 0);
    struct spool_stats st = stats_of(s);
    ck_assert_int_eq(st.full, 1);
    ck_assert_uint_eq(st.full_refusals, 1);
    ck_assert_uint_eq(st.first_seq, 1);
    ck_assert_uint_ge(st.bytes, 4096);
    ck_assert_uint_lt(st.bytes, 4096 + 100);
    ck_assert_uint_lt(spool_unconfirmed_bytes(s), 4096); /* the pin made it full */
    /* The pin goes: the spool is no longer full, and the next append makes
     * room by deleting the history. */
    spool_pin(s, 0);
    ck_assert_int_eq(spool_is_full(s), 0);
    ck_assert_int_eq(append_at(s, 41 + went, now_us()), 0);
    st = stats_of(s);
    ck_assert_uint_gt(st.first_seq, 1);
    ck_assert_uint_le(st.bytes, 4096);
    spool_close(s);

    /* full=refuse: appends go on, and the spool says calls are refused. */
    struct spool_options refuse = opt;
    refuse.full = SPOOL_FULL_REFUSE;
    s = open_with(&refuse);
    uint64_t last = spool_last_seq(s);
    ck_assert_int_eq(spool_confirm(s, last), 0);
    spool_pin(s, spool_first_seq(s));
    for (unsigned i = 1; i <= 60; i++)
        ck_assert_int_eq(append_at(s, (unsigned)last + i, now_us()), 0);
    ck_assert_int_eq(spool_refuses_calls(s), 1);
    ck_assert_uint_lt(spool_unconfirmed_bytes(s), 4096);
    spool_pin(s, 0);
    ck_assert_int_eq(spool_refuses_calls(s), 0);
    spool_close(s);
}
END_TEST

/* ---- retention and events out of time order ---- */

static struct spool *open_dir(const char *dir, const struct spool_options *opt)
{
    char err[256];
    struct spool *s = spool_open(dir, opt, err, sizeof(err));
    ck_assert_msg(s != NULL, "%s", err);
    return s;
}

/* A replay appends old events after fresh ones: the first segment holds
 * both, the ones after it only old ones. Retention must go by its newest
 * event, whichever came last: appended, recovered by a scan, or estimated
 * after a restart. */
START_TEST(retention_goes_by_the_newest_event_not_the_last)
{
    char dir[2][160];
    struct spool_options opt = {
        .segment_bytes = 512, .fsync = SPOOL_FSYNC_OFF, .retain_ms = 3600 * 1000};
    int64_t now = now_us(), old = now - 2 * 3600 * INT64_C(1000000);
    for (int k = 0; k < 2; k++) {
        snprintf(dir[k], sizeof(dir[k]), "%s/%d", tmpdir, k);
        struct spool *s = open_dir(dir[k], &opt);
        for (unsigned i = 1; i <= 3; i++)
            ck_assert_int_eq(append_at(s, i, now + i), 0);
        for (unsigned i = 4; i <= 40; i++)
            ck_assert_int_eq(append_at(s, i, old + i), 0);
        ck_assert_uint_gt(stats_of(s).segments, 3);
        if (k == 1) { /* the times come back from a scan at open */
            spool_close(s);
            s = open_dir(dir[k], &opt);
        }
        ck_assert_int_eq(spool_confirm(s, 40), 0);
        ck_assert_uint_eq(spool_first_seq(s), 1);
        spool_close(s);
        /* All confirmed now: after a restart the times are estimates. */
        s = open_dir(dir[k], &opt);
        spool_trim(s);
        ck_assert_uint_eq(spool_first_seq(s), 1);
        expect_run(s, 0, 1, 40);
        spool_close(s);
    }
}
END_TEST

/* ---- slow I/O outside the lock ---- */

/*
 * The spool's slow calls (fsync, fdatasync, unlinkat of a segment) go
 * through these wrappers, which override the C library's in this test
 * binary and pass straight through unless a test armed the probe. Armed,
 * each call first checks that another thread can take the spool's lock
 * while it runs (spool_first_seq() takes it), waiting up to two seconds: an
 * appender would be stuck behind a call made under the lock.
 */
static struct spool *probe_spool;
static pthread_mutex_t probe_mutex = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t probe_cond = PTHREAD_COND_INITIALIZER;
static unsigned probe_calls, probe_blocked;

/* One probe's helper; probes may run in several threads at once. */
struct probe_call {
    struct spool *s;
    int done;
};

/* Helpers still waiting for the lock, and their calls. */
static pthread_t probe_stuck[16];
static struct probe_call *probe_stuck_call[16];

static void *probe_helper(void *arg)
{
    struct probe_call *call = arg;
    spool_first_seq(call->s);
    pthread_mutex_lock(&probe_mutex);
    call->done = 1;
    pthread_cond_broadcast(&probe_cond);
    pthread_mutex_unlock(&probe_mutex);
    return NULL;
}

static void probe(void)
{
    struct timespec deadline;
    struct probe_call *call;
    pthread_t t;
    pthread_mutex_lock(&probe_mutex);
    if (probe_spool == NULL || probe_blocked > 0) {
        pthread_mutex_unlock(&probe_mutex);
        return;
    }
    probe_calls++;
    if ((call = calloc(1, sizeof(*call))) == NULL)
        abort();
    call->s = probe_spool;
    if (pthread_create(&t, NULL, probe_helper, call) != 0)
        abort();
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 2;
    while (!call->done && pthread_cond_timedwait(&probe_cond, &probe_mutex, &deadline) != ETIMEDOUT)
        ;
    if (call->done) {
        pthread_mutex_unlock(&probe_mutex);
        pthread_join(t, NULL);
        free(call);
        return;
    }
    /* Stuck behind our caller's lock: joined once the test is done. */
    if (probe_blocked < 16) {
        probe_stuck[probe_blocked] = t;
        probe_stuck_call[probe_blocked] = call;
    }
    probe_blocked++;
    pthread_mutex_unlock(&probe_mutex);
}

int fsync(int fd)
{
    probe();
    return (int)syscall(SYS_fsync, fd);
}

int fdatasync(int fd)
{
    probe();
    return (int)syscall(SYS_fdatasync, fd);
}

int unlinkat(int dirfd, const char *path, int flags)
{
    size_t len = strlen(path);
    if (len > 4 && strcmp(path + len - 4, ".seg") == 0)
        probe();
    return (int)syscall(SYS_unlinkat, dirfd, path, flags);
}

static void probe_begin(struct spool *s)
{
    pthread_mutex_lock(&probe_mutex);
    probe_spool = s;
    probe_calls = probe_blocked = 0;
    pthread_mutex_unlock(&probe_mutex);
}

/* Disarms the probe; returns how many calls it found holding the lock,
 * after checking that it saw some. */
static unsigned probe_end(void)
{
    pthread_mutex_lock(&probe_mutex);
    probe_spool = NULL;
    unsigned calls = probe_calls, blocked = probe_blocked;
    pthread_mutex_unlock(&probe_mutex);
    for (unsigned i = 0; i < blocked && i < 16; i++) {
        pthread_join(probe_stuck[i], NULL);
        free(probe_stuck_call[i]);
    }
    ck_assert_uint_gt(calls, 0);
    return blocked;
}

START_TEST(rotation_syncs_and_deletions_never_hold_the_lock)
{
    /* BATCH: sealing a segment used to fdatasync it and fsync the directory
     * under the lock; confirming deletes segments. */
    struct spool_options batch = {
        .segment_bytes = 512, .fsync = SPOOL_FSYNC_BATCH, .fsync_interval_ms = 1};
    struct spool *s = open_with(&batch);
    probe_begin(s);
    for (unsigned i = 1; i <= 60; i++)
        append_numbered(s, i);
    ck_assert_int_eq(spool_confirm(s, 60), 0);
    ck_assert_uint_eq(probe_end(), 0);
    spool_close(s);

    /* ALWAYS, and the cap deleting retained segments for an append. */
    struct spool_options always = {.segment_bytes = 512,
                                   .fsync = SPOOL_FSYNC_ALWAYS,
                                   .max_bytes = 4096,
                                   .retain_ms = 3600 * 1000};
    s = open_with(&always);
    probe_begin(s);
    uint64_t last = spool_last_seq(s);
    for (unsigned i = 1; i <= 200; i++) {
        ck_assert_int_eq(append_at(s, (unsigned)last + i, now_us()), 0);
        if (i % 10 == 0)
            ck_assert_int_eq(spool_confirm(s, last + i), 0);
    }
    ck_assert_uint_eq(probe_end(), 0);
    ck_assert_uint_le(stats_of(s).bytes, 4096);
    expect_run(s, 0, (unsigned)spool_first_seq(s), (unsigned)last + 200);
    spool_close(s);

    /* A round syncs the segments it was handed and the directory before
     * the records in them count as durable: all there after a reopen. */
    s = open_spool(0);
    ck_assert_uint_eq(spool_last_seq(s), last + 200);
    spool_close(s);
}
END_TEST

/* ---- stats without I/O ---- */

/* Overwrites every segment file with zeros, keeping its size. */
static void zero_segments(void)
{
    char names[64][128];
    static char zeros[1 << 16];
    size_t n = list_segments(names, 64);
    for (size_t i = 0; i < n; i++) {
        int fd = open(names[i], O_WRONLY);
        ck_assert_int_ge(fd, 0);
        off_t size = file_size(names[i]);
        for (off_t off = 0; off < size; off += (off_t)sizeof(zeros)) {
            size_t len = size - off < (off_t)sizeof(zeros) ? (size_t)(size - off) : sizeof(zeros);
            ck_assert_int_eq(pwrite(fd, zeros, len, off), (ssize_t)len);
        }
        close(fd);
    }
}

/* /metrics asks on every scrape: the answer comes from memory. The spool's
 * files are wiped under it, and the stats do not notice. */
START_TEST(stats_never_read_the_segments)
{
    struct spool_options opt = {.segment_bytes = 512, .fsync = SPOOL_FSYNC_OFF};
    struct spool *s = open_with(&opt);
    for (unsigned i = 1; i <= 40; i++)
        append_numbered(s, i); /* time_us 1000 + i */
    ck_assert_int_eq(spool_confirm(s, 4), 0);
    zero_segments();
    ck_assert_int_eq(stats_of(s).oldest_unconfirmed_time_us, 1005);
    ck_assert_int_eq(spool_confirm(s, 33), 0);
    ck_assert_int_eq(stats_of(s).oldest_unconfirmed_time_us, 1034);
    ck_assert_int_eq(spool_confirm(s, 40), 0);
    ck_assert_int_eq(stats_of(s).oldest_unconfirmed_time_us, 0);
    spool_close(s);
}
END_TEST

/* Past 512 records a segment keeps every other sample, then every fourth,
 * ...: the answer is a record at or a little before the first unconfirmed
 * one, the same after a reopen (samples from the recovery scan). */
START_TEST(stats_sample_long_segments_sparsely)
{
    const unsigned n = 5000;
    struct spool *s = open_spool(0);
    for (unsigned i = 1; i <= n; i++)
        ck_assert_int_eq(append_at(s, i, 1000 + i), 0);
    for (unsigned c = 1234; c < n; c += 1111) {
        if (c > 2500) { /* the second half from the samples of a scan */
            spool_close(s);
            s = open_spool(0);
        }
        ck_assert_int_eq(spool_confirm(s, c), 0);
        int64_t t = stats_of(s).oldest_unconfirmed_time_us;
        ck_assert_int_le(t, 1000 + (int64_t)c + 1);
        ck_assert_int_ge(t, 1000 + (int64_t)c + 1 - (int64_t)n / 256);
    }
    spool_close(s);
}
END_TEST

/* ---- torn tails of sealed segments ---- */

/* With fsync=off a machine crash can zero the end of any recent segment.
 * The reader would stop there forever; the open cuts it and says what was
 * lost, and the reader goes on with the next segment. */
START_TEST(torn_tail_of_a_sealed_segment_is_truncated_on_open)
{
    char names[64][128], want[160];
    struct spool_options opt = {.segment_bytes = 512, .fsync = SPOOL_FSYNC_OFF};
    struct spool *s = open_with(&opt);
    for (unsigned i = 1; i <= 60; i++)
        append_numbered(s, i);
    ck_assert_int_eq(spool_confirm(s, 3), 0);
    spool_close(s);
    size_t n = list_segments(names, 64);
    ck_assert_uint_gt(n, 4);
    /* Zero the last 100 bytes of the second segment, size unchanged. */
    static const char zeros[100];
    off_t size = file_size(names[1]);
    int fd = open(names[1], O_WRONLY);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(pwrite(fd, zeros, sizeof(zeros), size - 100), 100);
    close(fd);

    log_capture_begin();
    s = open_with(&opt);
    char *log = log_capture_end();
    ck_assert_int_lt(file_size(names[1]), size - 60);
    /* Every record but the lost ones, in order, and no corrupt one. */
    struct spool_cursor *c = spool_cursor_new(s, 3);
    struct spool_event ev;
    uint64_t expect = 4, lost_from = 0, lost_to = seg_seq(names[2]) - 1;
    int r;
    while ((r = spool_cursor_next(c, &ev)) == 1) {
        if (ev.seq != expect) {
            ck_assert_uint_eq(lost_from, 0);
            lost_from = expect;
            ck_assert_uint_eq(ev.seq, lost_to + 1);
        }
        expect = ev.seq + 1;
    }
    ck_assert_int_eq(r, 0);
    ck_assert_uint_eq(expect, 61);
    ck_assert_uint_gt(lost_from, seg_seq(names[1]));
    snprintf(want, sizeof(want), "%s: ", strrchr(names[1], '/') + 1);
    ck_assert_msg(strstr(log, want) != NULL, "%s", log);
    snprintf(want, sizeof(want),
             "events %" PRIu64 "..%" PRIu64 " are lost, %" PRIu64 " of them unconfirmed", lost_from,
             lost_to, lost_to - lost_from + 1);
    ck_assert_msg(strstr(log, want) != NULL, "%s", log);
    free(log);
    spool_cursor_free(c);
    ck_assert_uint_eq(append_numbered(s, 61), 61);
    spool_close(s);

    /* Cut for good: the next open has nothing left to cut (it still notes
     * the gap, until the publisher confirms past it). */
    size = file_size(names[1]);
    log_capture_begin();
    s = open_with(&opt);
    expect_run(s, lost_to, (unsigned)lost_to + 1, 61);
    spool_close(s);
    log = log_capture_end();
    ck_assert_ptr_null(strstr(log, "dropping"));
    ck_assert_int_eq(file_size(names[1]), size);
    free(log);
}
END_TEST

Suite *spool_suite(void)
{
    Suite *s = suite_create("spool");
    TCase *tc = tcase_create("spool");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_unchecked_fixture(tc, make_root, scratch_root_remove);
    tcase_add_checked_fixture(tc, make_tmpdir, NULL);
    tcase_add_test(tc, append_then_read_in_order);
    tcase_add_test(tc, records_follow_the_documented_format);
    tcase_add_test(tc, empty_spool_reads_nothing);
    tcase_add_test(tc, large_and_empty_bodies_round_trip);
    tcase_add_test(tc, too_long_id_is_refused);
    tcase_add_test(tc, notify_fd_becomes_readable_after_append);
    tcase_add_test(tc, notifications_are_never_lost);
    tcase_add_test(tc, open_creates_missing_directories);
    tcase_add_test(tc, open_reports_why_it_cannot_create);
    tcase_add_test(tc, second_open_of_the_same_dir_is_refused);
    tcase_add_test(tc, concurrent_appends_get_every_seq_once);
    tcase_add_test(tc, reader_never_sees_partial_records_while_writers_append);
    tcase_add_test(tc, rotation_spreads_records_over_segments);
    tcase_add_test(tc, confirm_deletes_old_segments_and_persists);
    tcase_add_test(tc, reopen_continues_numbering);
    tcase_add_test(tc, numbering_survives_losing_every_segment);
    tcase_add_test(tc, cursor_survives_deletion_below_confirmed);
    tcase_add_test(tc, torn_tail_is_truncated_on_open);
    tcase_add_test(tc, torn_header_is_truncated_on_open);
    tcase_add_test(tc, garbage_tail_is_truncated_on_open);
    tcase_add_test(tc, corrupt_record_in_a_sealed_segment_stops_the_cursor);
    tcase_add_test(tc, fsync_always_syncs_each_append_before_returning);
    tcase_add_test(tc, fsync_always_group_commit_covers_every_concurrent_append);
    tcase_add_test(tc, fsync_off_never_syncs);
    tcase_add_test(tc, fsync_batch_syncs_within_the_interval);
    tcase_add_test(tc, fsync_batch_appends_never_wait_and_close_flushes);
    tcase_add_test(tc, cap_skip_refuses_once_full_until_confirms_free_room);
    tcase_add_test(tc, cap_refuse_keeps_appending_and_reports_full);
    tcase_add_test(tc, cap_makes_room_by_deleting_retained_segments_oldest_first);
    tcase_add_test(tc, cap_full_counts_unconfirmed_bytes_only);
    tcase_add_test(tc, retention_deletes_confirmed_segments_once_their_events_are_old);
    tcase_add_test(tc, retention_by_time_passing_and_spool_trim);
    tcase_add_test(tc, retention_recovered_on_reopen);
    tcase_add_test(tc, retain_zero_deletes_on_confirm);
    tcase_add_test(tc, stats_follow_the_oldest_unconfirmed_event);
    tcase_add_test(tc, readonly_reads_the_spool_a_writer_owns);
    tcase_add_test(tc, readonly_takes_a_torn_last_record_as_the_end);
    tcase_add_test(tc, readonly_skips_segments_deleted_before_the_cursor_gets_there);
    tcase_add_test(tc, reopen_after_a_crash_with_new_options);
    tcase_add_test(tc, pin_keeps_history_from_retention_and_the_cap);
    tcase_add_test(tc, pin_makes_the_spool_full_when_the_cap_needs_its_room);
    tcase_add_test(tc, retention_goes_by_the_newest_event_not_the_last);
    tcase_add_test(tc, rotation_syncs_and_deletions_never_hold_the_lock);
    tcase_add_test(tc, stats_never_read_the_segments);
    tcase_add_test(tc, stats_sample_long_segments_sparsely);
    tcase_add_test(tc, torn_tail_of_a_sealed_segment_is_truncated_on_open);
    suite_add_tcase(s, tc);
    return s;
}
