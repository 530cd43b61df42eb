#include "unit.h"
#include "proxy/conffile.h"
#include "scratch.h"

#include "common/buf.h"
#include "common/mem.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- replace_span ---- */

/* A routes.conf as people write it: a header comment, aligned columns, odd spacing. */
static const char ROUTES[] =
    "# name        match                    -> action                         options\n"
    "route stock-read   xmlrpc stock.get     -> legacy                        intercept   # "
    "trailing comment\n"
    "route orders xmlrpc orders.* -> legacy\n"
    "route health http GET /health -> legacy # probe\n";

/* Byte offset of the first `word` on line `line` (1-based) of text. */
static size_t line_start(const char *text, int line)
{
    const char *p = text;
    for (int i = 1; i < line; i++) {
        p = strchr(p, '\n');
        ck_assert_ptr_nonnull(p);
        p++;
    }
    return (size_t)(p - text);
}

static size_t column_of(const char *text, int line, const char *word)
{
    size_t begin = line_start(text, line);
    const char *eol = strchr(text + begin, '\n');
    const char *hit = strstr(text + begin, word);
    ck_assert_msg(hit != NULL && (eol == NULL || hit < eol), "'%s' not on line %d", word, line);
    return (size_t)(hit - text) - begin;
}

/*
 * Replaces the first `word` on line `line` with `replacement` and returns
 * the result (a static buffer, valid until the next call).
 */
static const char *edit(const char *text, int line, const char *word, const char *replacement)
{
    static struct buf out = BUF_INIT;
    size_t start = column_of(text, line, word);

    out.len = 0;
    ck_assert_int_eq(conffile_replace_span(text, strlen(text), line, start, start + strlen(word),
                                           replacement, &out),
                     0);
    return buf_cstr(&out);
}

/* Asserts that lines other than `line` came through byte for byte. */
static void assert_other_lines_kept(const char *before, const char *after, int line)
{
    size_t head = line_start(before, line);
    const char *old_tail = strchr(before + head, '\n');
    const char *new_tail = strchr(after + head, '\n');

    ck_assert_int_eq(memcmp(before, after, head), 0);
    ck_assert_ptr_nonnull(old_tail);
    ck_assert_ptr_nonnull(new_tail);
    ck_assert_str_eq(new_tail, old_tail);
}

START_TEST(shorter_replacement_pads_to_keep_columns)
{
    const char *r = edit(ROUTES, 2, "legacy", "svc");
    ck_assert_str_eq(r, "# name        match                    -> action                         "
                        "options\n"
                        "route stock-read   xmlrpc stock.get     -> svc                           "
                        "intercept   # trailing comment\n"
                        "route orders xmlrpc orders.* -> legacy\n"
                        "route health http GET /health -> legacy # probe\n");
    ck_assert_uint_eq(column_of(r, 2, "intercept"), column_of(ROUTES, 2, "intercept"));
    ck_assert_uint_eq(column_of(r, 2, "#"), column_of(ROUTES, 2, "#"));
    assert_other_lines_kept(ROUTES, r, 2);

    /* a match column two characters narrower: the arrow stays put */
    r = edit(ROUTES, 2, "stock.get", "stock.*");
    ck_assert_uint_eq(column_of(r, 2, "->"), column_of(ROUTES, 2, "->"));
    ck_assert_uint_eq(column_of(r, 2, "intercept"), column_of(ROUTES, 2, "intercept"));
    assert_other_lines_kept(ROUTES, r, 2);
}
END_TEST

START_TEST(longer_replacement_absorbs_blanks)
{
    const char *r = edit(ROUTES, 2, "legacy", "stock-svc");
    ck_assert_str_eq(r, "# name        match                    -> action                         "
                        "options\n"
                        "route stock-read   xmlrpc stock.get     -> stock-svc                     "
                        "intercept   # trailing comment\n"
                        "route orders xmlrpc orders.* -> legacy\n"
                        "route health http GET /health -> legacy # probe\n");
    ck_assert_uint_eq(column_of(r, 2, "intercept"), column_of(ROUTES, 2, "intercept"));
    assert_other_lines_kept(ROUTES, r, 2);
}
END_TEST

START_TEST(longer_than_the_gap_keeps_one_blank)
{
    /* 30 characters where 6 were and 24 blanks follow: the text moves right, one blank stays */
    const char *r = edit(ROUTES, 2, "legacy", "a-very-long-upstream-name-12345");
    ck_assert_str_eq(r,
                     "# name        match                    -> action                         "
                     "options\n"
                     "route stock-read   xmlrpc stock.get     -> a-very-long-upstream-name-12345 "
                     "intercept   # trailing comment\n"
                     "route orders xmlrpc orders.* -> legacy\n"
                     "route health http GET /health -> legacy # probe\n");

    /* a single blank before a comment is never consumed */
    r = edit(ROUTES, 4, "legacy", "stock-svc");
    ck_assert_str_eq(r + line_start(r, 4), "route health http GET /health -> stock-svc # probe\n");
    assert_other_lines_kept(ROUTES, r, 4);

    /* two blanks, three characters more: one blank absorbed, one kept */
    r = edit("route a * -> legacy  intercept\n", 1, "legacy", "stock-svc");
    ck_assert_str_eq(r, "route a * -> stock-svc intercept\n");
}
END_TEST

START_TEST(equal_length_changes_only_the_span)
{
    const char *r = edit(ROUTES, 2, "legacy", "svc-v2");
    ck_assert_str_eq(r, "# name        match                    -> action                         "
                        "options\n"
                        "route stock-read   xmlrpc stock.get     -> svc-v2                        "
                        "intercept   # trailing comment\n"
                        "route orders xmlrpc orders.* -> legacy\n"
                        "route health http GET /health -> legacy # probe\n");
    ck_assert_uint_eq(strlen(r), strlen(ROUTES));
}
END_TEST

START_TEST(span_at_end_of_line_gets_no_padding)
{
    const char *r = edit(ROUTES, 3, "legacy", "svc");
    ck_assert_str_eq(r + line_start(r, 3), "route orders xmlrpc orders.* -> svc\n"
                                           "route health http GET /health -> legacy # probe\n");
    assert_other_lines_kept(ROUTES, r, 3);

    r = edit(ROUTES, 3, "legacy", "stock-svc");
    ck_assert_str_eq(r + line_start(r, 3), "route orders xmlrpc orders.* -> stock-svc\n"
                                           "route health http GET /health -> legacy # probe\n");

    /* trailing blanks with nothing after them align nothing: left exactly as they were */
    r = edit("route a * -> legacy   \n", 1, "legacy", "svc");
    ck_assert_str_eq(r, "route a * -> svc   \n");
}
END_TEST

START_TEST(trailing_comment_is_kept)
{
    /* the options column shrinks: the comment stays in its column, text intact */
    const char *r = edit(ROUTES, 2, "intercept", "log");
    ck_assert_str_eq(r + line_start(r, 2),
                     "route stock-read   xmlrpc stock.get     -> legacy                        log "
                     "        # trailing comment\n"
                     "route orders xmlrpc orders.* -> legacy\n"
                     "route health http GET /health -> legacy # probe\n");
    ck_assert_uint_eq(column_of(r, 2, "# trailing comment"), column_of(ROUTES, 2, "#"));

    r = edit(ROUTES, 4, "legacy", "svc");
    ck_assert_str_eq(r + line_start(r, 4), "route health http GET /health -> svc    # probe\n");
}
END_TEST

START_TEST(span_inside_a_word_is_not_padded)
{
    /* no blank right after the span: padding would split the word */
    const char *r = edit("route a * -> legacy intercept\n", 1, "leg", "l");
    ck_assert_str_eq(r, "route a * -> lacy intercept\n");
    r = edit("route a * -> legacy intercept\n", 1, "leg", "legacy-");
    ck_assert_str_eq(r, "route a * -> legacy-acy intercept\n");
}
END_TEST

START_TEST(tabs_are_not_consumed)
{
    const char *r = edit("route a * -> legacy\t# tab\n", 1, "legacy", "stock-svc");
    ck_assert_str_eq(r, "route a * -> stock-svc\t# tab\n");
    r = edit("route a * -> legacy  \t# tab\n", 1, "legacy", "stock-svc");
    ck_assert_str_eq(r, "route a * -> stock-svc\t# tab\n");
}
END_TEST

START_TEST(widths_count_characters_not_bytes)
{
    /* "café" is 5 bytes but 4 columns: one space of padding, not two */
    const char *r = edit("route a * -> caf\xc3\xa9  # c\n", 1, "caf\xc3\xa9", "tea");
    ck_assert_str_eq(r, "route a * -> tea   # c\n");
}
END_TEST

START_TEST(crlf_line_endings_are_kept)
{
    static const char text[] = "# routes\r\n"
                               "route r * -> legacy\r\n"
                               "route s * -> legacy   # c\r\n"
                               "\r\n";
    struct buf out = BUF_INIT;
    const char *r = edit(text, 2, "legacy", "svc");
    ck_assert_str_eq(r, "# routes\r\n"
                        "route r * -> svc\r\n"
                        "route s * -> legacy   # c\r\n"
                        "\r\n");
    r = edit(text, 3, "legacy", "svc");
    ck_assert_str_eq(r, "# routes\r\n"
                        "route r * -> legacy\r\n"
                        "route s * -> svc      # c\r\n"
                        "\r\n");

    /* the CR is part of the line ending: a span may end before it, not cover it */
    size_t len = strlen("route r * -> legacy");
    ck_assert_int_eq(conffile_replace_span(text, strlen(text), 2, len, len, "!", &out), 0);
    ck_assert_str_eq(buf_cstr(&out), "# routes\r\n"
                                     "route r * -> legacy!\r\n"
                                     "route s * -> legacy   # c\r\n"
                                     "\r\n");
    out.len = 0;
    ck_assert_int_eq(conffile_replace_span(text, strlen(text), 2, 0, len + 1, "x", &out), -1);
    ck_assert_uint_eq(out.len, 0);
    buf_dispose(&out);
}
END_TEST

START_TEST(missing_final_newline_stays_missing)
{
    static const char text[] = "upstream legacy http://127.0.0.1:8000\nroute r * -> legacy";
    struct buf out = BUF_INIT;
    const char *r = edit(text, 2, "legacy", "stock-svc");
    ck_assert_str_eq(r, "upstream legacy http://127.0.0.1:8000\nroute r * -> stock-svc");

    /* there is no line 3, not even an empty one */
    ck_assert_int_eq(conffile_replace_span(text, strlen(text), 3, 0, 0, "x", &out), -1);
    buf_dispose(&out);
}
END_TEST

START_TEST(empty_lines_exist_and_accept_insertions)
{
    static const char text[] = "a\n\nb\n";
    struct buf out = BUF_INIT;
    ck_assert_int_eq(conffile_replace_span(text, strlen(text), 2, 0, 0, "route", &out), 0);
    ck_assert_str_eq(buf_cstr(&out), "a\nroute\nb\n");
    out.len = 0;
    ck_assert_int_eq(conffile_replace_span(text, strlen(text), 2, 0, 1, "x", &out), -1);
    buf_dispose(&out);
}
END_TEST

START_TEST(lines_and_spans_out_of_range_fail)
{
    struct buf out = BUF_INIT;
    size_t len = strlen(ROUTES);
    size_t line3 = strlen("route orders xmlrpc orders.* -> legacy");

    buf_append_str(&out, "kept");
    ck_assert_int_eq(conffile_replace_span(ROUTES, len, 0, 0, 1, "x", &out), -1);
    ck_assert_int_eq(conffile_replace_span(ROUTES, len, -1, 0, 1, "x", &out), -1);
    /* four lines and a final newline: line 5 does not exist */
    ck_assert_int_eq(conffile_replace_span(ROUTES, len, 5, 0, 0, "x", &out), -1);
    ck_assert_int_eq(conffile_replace_span(ROUTES, len, 1000, 0, 0, "x", &out), -1);
    ck_assert_int_eq(conffile_replace_span("", 0, 1, 0, 0, "x", &out), -1);
    /* past the end of the line: the newline is not part of it */
    ck_assert_int_eq(conffile_replace_span(ROUTES, len, 3, 0, line3 + 1, "x", &out), -1);
    ck_assert_int_eq(conffile_replace_span(ROUTES, len, 3, line3 + 1, line3 + 1, "x", &out), -1);
    ck_assert_int_eq(conffile_replace_span(ROUTES, len, 3, 5, 4, "x", &out), -1);
    /* a failed call appends nothing */
    ck_assert_str_eq(buf_cstr(&out), "kept");

    /* the exact end of the line is fine, and the result is appended */
    ck_assert_int_eq(conffile_replace_span(ROUTES, len, 3, line3, line3, " log", &out), 0);
    ck_assert_uint_eq(out.len, 4 + len + 4);
    ck_assert_int_eq(memcmp(out.data, "kept", 4), 0);
    ck_assert_str_eq(buf_cstr(&out) + 4 + line_start(ROUTES, 3),
                     "route orders xmlrpc orders.* -> legacy log\n"
                     "route health http GET /health -> legacy # probe\n");
    buf_dispose(&out);
}
END_TEST

START_TEST(untouched_lines_survive_byte_for_byte)
{
    /* bytes a rewriter might "normalise": trailing blanks, tabs, a stray CR, NUL, Latin-1 */
    static const char text[] = "#\tweird   \n"
                               "   \n"
                               "route a * -> legacy   # x\r\n"
                               "upstream\tlegacy  http://h:1/ \xe9\r \x00 z\n"
                               "\n"
                               "last";
    size_t len = sizeof(text) - 1;
    size_t at = 11 + 4; /* line 3 */
    size_t start = strlen("route a * -> ");
    struct buf out = BUF_INIT;

    ck_assert_int_eq(conffile_replace_span(text, len, 3, start, start + 6, "svc", &out), 0);
    ck_assert_uint_eq(out.len, len);
    ck_assert_int_eq(memcmp(out.data, text, at), 0);
    ck_assert_int_eq(memcmp(out.data + at, "route a * -> svc      # x\r\n", 27), 0);
    ck_assert_int_eq(memcmp(out.data + at + 27, text + at + 27, len - at - 27), 0);
    buf_dispose(&out);
}
END_TEST

/* ---- files ---- */

/* Each test case of files works in a scratch root of its own (scratch.h). */
static void make_root(void)
{
    scratch_root_make("conffile");
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in dir, sorted and comma-separated, hidden ones included. Free with free(). */
static char *listing(const char *dir)
{
    struct buf b = BUF_INIT;
    char *names[64];
    size_t count = 0;
    struct dirent *e;
    DIR *d = opendir(dir);

    ck_assert_ptr_nonnull(d);
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        ck_assert_uint_lt(count, 64);
        names[count++] = mem_strdup(e->d_name);
    }
    closedir(d);
    qsort(names, count, sizeof(names[0]), by_name);
    for (size_t i = 0; i < count; i++) {
        buf_appendf(&b, "%s%s", i > 0 ? "," : "", names[i]);
        free(names[i]);
    }
    buf_cstr(&b);
    return buf_steal(&b);
}

static void assert_listing(const char *dir, const char *expected)
{
    char *names = listing(dir);
    ck_assert_str_eq(names, expected);
    free(names);
}

START_TEST(read_appends_the_whole_file)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], err[256];
    struct buf out = BUF_INIT;
    struct buf big = BUF_INIT;

    scratch_dir("t", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/routes.conf", dir);
    /* bigger than one read, so the loop is exercised */
    for (int i = 0; i < 5000; i++)
        buf_appendf(&big, "route r%04d xmlrpc m%d.* -> legacy\n", i, i);
    scratch_write(path, buf_cstr(&big), 0644);

    buf_append_str(&out, "prefix:");
    ck_assert_int_eq(conffile_read(path, &out, err, sizeof(err)), 0);
    ck_assert_uint_eq(out.len, 7 + big.len);
    ck_assert_int_eq(memcmp(out.data, "prefix:", 7), 0);
    ck_assert_int_eq(memcmp(out.data + 7, big.data, big.len), 0);
    buf_dispose(&out);
    buf_dispose(&big);
}
END_TEST

START_TEST(read_of_a_missing_file_reports_path_and_reason)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], expected[PATH_MAX + 64], err[PATH_MAX + 64];
    struct buf out = BUF_INIT;

    scratch_dir("t", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/missing.conf", dir);
    buf_append_str(&out, "kept");
    ck_assert_int_eq(conffile_read(path, &out, err, sizeof(err)), -1);
    snprintf(expected, sizeof(expected), "%s: %s", path, strerror(ENOENT));
    ck_assert_str_eq(err, expected);
    ck_assert_str_eq(buf_cstr(&out), "kept");

    /* a directory opens but does not read */
    ck_assert_int_eq(conffile_read(dir, &out, err, sizeof(err)), -1);
    ck_assert_ptr_nonnull(strstr(err, strerror(EISDIR)));
    ck_assert_str_eq(buf_cstr(&out), "kept");
    buf_dispose(&out);
}
END_TEST

START_TEST(write_replaces_content_and_keeps_mode)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], err[256] = "";
    static const char next[] = "route r * -> stock-svc\n";
    struct stat before, after;

    scratch_dir("t", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/routes.conf", dir);
    scratch_write(path, "route r * -> legacy\n", 0640);
    ck_assert_int_eq(stat(path, &before), 0);

    ck_assert_int_eq(conffile_write_atomic(path, next, strlen(next), err, sizeof(err)), 0);
    ck_assert_str_eq(err, "");
    ck_assert_int_eq(stat(path, &after), 0);
    ck_assert_uint_eq(after.st_mode & 07777, 0640);
    ck_assert_uint_eq(after.st_uid, before.st_uid);
    ck_assert_uint_eq(after.st_gid, before.st_gid);
    /* a new file took the old one's place: readers holding the old one keep reading it */
    ck_assert_uint_ne(after.st_ino, before.st_ino);
    scratch_assert_file(path, next);
    assert_listing(dir, "routes.conf");

    /* a read-only file can be replaced too (rename needs the directory, not the file) */
    ck_assert_int_eq(chmod(path, 0444), 0);
    ck_assert_int_eq(conffile_write_atomic(path, "", 0, err, sizeof(err)), 0);
    ck_assert_int_eq(stat(path, &after), 0);
    ck_assert_uint_eq(after.st_mode & 07777, 0444);
    scratch_assert_file(path, "");
    assert_listing(dir, "routes.conf");
}
END_TEST

START_TEST(write_through_a_symlink_replaces_the_target)
{
    char dir[PATH_MAX], deploy[PATH_MAX + 32], real[PATH_MAX + 64], link[PATH_MAX + 32];
    char err[256], target[PATH_MAX];
    static const char next[] = "route r * -> stock-svc\n";
    struct stat st;
    ssize_t n;

    scratch_dir("t", dir, sizeof(dir));
    snprintf(deploy, sizeof(deploy), "%s/deploy", dir);
    snprintf(real, sizeof(real), "%s/real.conf", deploy);
    snprintf(link, sizeof(link), "%s/routes.conf", dir);
    ck_assert_int_eq(mkdir(deploy, 0700), 0);
    scratch_write(real, "route r * -> legacy\n", 0600);
    /* relative, as deploy tools make them: resolved against the link's directory */
    ck_assert_int_eq(symlink("deploy/real.conf", link), 0);

    ck_assert_int_eq(conffile_write_atomic(link, next, strlen(next), err, sizeof(err)), 0);
    ck_assert_int_eq(lstat(link, &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    n = readlink(link, target, sizeof(target) - 1);
    ck_assert_int_gt(n, 0);
    target[n] = '\0';
    ck_assert_str_eq(target, "deploy/real.conf");
    scratch_assert_file(real, next);
    scratch_assert_file(link, next);
    assert_listing(dir, "deploy,routes.conf");
    assert_listing(deploy, "real.conf");
}
END_TEST

START_TEST(write_into_a_read_only_directory_fails_cleanly)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], err[256] = "";
    static const char old[] = "route r * -> legacy\n";
    int rc;

    /* root writes into a 0500 directory regardless; the tests below cover root too */
    if (geteuid() == 0)
        return;
    scratch_dir("t", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/routes.conf", dir);
    scratch_write(path, old, 0640);
    ck_assert_int_eq(chmod(dir, 0500), 0);
    rc = conffile_write_atomic(path, "x\n", 2, err, sizeof(err));
    chmod(dir, 0700);
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(err, "create temporary file") != NULL, "%s", err);
    ck_assert_msg(strstr(err, strerror(EACCES)) != NULL, "%s", err);
    scratch_assert_file(path, old);
    assert_listing(dir, "routes.conf");
}
END_TEST

START_TEST(write_that_cannot_create_the_temporary_fails_cleanly)
{
    /* ".<name>.XXXXXX" is 8 bytes longer than the name: over NAME_MAX, even for root */
    char dir[PATH_MAX], name[251], path[PATH_MAX + 300], err[512] = "";
    static const char old[] = "route r * -> legacy\n";

    scratch_dir("t", dir, sizeof(dir));
    memset(name, 'r', sizeof(name) - 1);
    name[sizeof(name) - 1] = '\0';
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    scratch_write(path, old, 0640);
    ck_assert_int_eq(conffile_write_atomic(path, "x\n", 2, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "create temporary file") != NULL, "%s", err);
    ck_assert_int_eq(strncmp(err, path, strlen(path)), 0);
    scratch_assert_file(path, old);
    assert_listing(dir, name);
}
END_TEST

START_TEST(write_that_fails_halfway_removes_the_temporary)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], err[256] = "";
    static const char old[] = "route r * -> legacy\n";
    char big[8192];
    struct rlimit saved, small;
    void (*saved_handler)(int);
    int limited;
    int rc;

    scratch_dir("t", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/routes.conf", dir);
    scratch_write(path, old, 0640);
    memset(big, '#', sizeof(big));

    /* A file size limit makes write() fail with EFBIG after the temporary exists. */
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    /* Only the soft limit: lowering the hard one could not be undone without root. */
    small.rlim_cur = 1024;
    small.rlim_max = saved.rlim_max;
    /*
     * No Check macro until the limit is lifted again: Check may record
     * progress in a file of its own, and that write would hit the limit too.
     */
    saved_handler = signal(SIGXFSZ, SIG_IGN);
    limited = setrlimit(RLIMIT_FSIZE, &small);
    rc = conffile_write_atomic(path, big, sizeof(big), err, sizeof(err));
    setrlimit(RLIMIT_FSIZE, &saved);
    signal(SIGXFSZ, saved_handler);

    ck_assert_int_eq(limited, 0);
    ck_assert_int_eq(rc, -1);
    ck_assert_msg(strstr(err, "write temporary file") != NULL, "%s", err);
    ck_assert_msg(strstr(err, strerror(EFBIG)) != NULL, "%s", err);
    scratch_assert_file(path, old);
    assert_listing(dir, "routes.conf");
}
END_TEST

START_TEST(write_to_a_missing_path_or_a_directory_fails)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], err[256] = "";

    scratch_dir("t", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/missing.conf", dir);
    ck_assert_int_eq(conffile_write_atomic(path, "x\n", 2, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "resolve path") != NULL, "%s", err);

    ck_assert_int_eq(conffile_write_atomic(dir, "x\n", 2, err, sizeof(err)), -1);
    ck_assert_msg(strstr(err, "not a regular file") != NULL, "%s", err);
    assert_listing(dir, "");
}
END_TEST

START_TEST(flipping_a_route_round_trips_through_the_file)
{
    char dir[PATH_MAX], path[PATH_MAX + 32], err[256];
    struct buf text = BUF_INIT;
    struct buf next = BUF_INIT;
    size_t start = column_of(ROUTES, 2, "legacy");

    scratch_dir("t", dir, sizeof(dir));
    snprintf(path, sizeof(path), "%s/routes.conf", dir);
    scratch_write(path, ROUTES, 0640);
    ck_assert_int_eq(conffile_read(path, &text, err, sizeof(err)), 0);
    ck_assert_int_eq(
        conffile_replace_span(text.data, text.len, 2, start, start + 6, "stock-svc", &next), 0);
    ck_assert_int_eq(conffile_write_atomic(path, next.data, next.len, err, sizeof(err)), 0);
    scratch_assert_file(path, edit(ROUTES, 2, "legacy", "stock-svc"));
    assert_listing(dir, "routes.conf");
    buf_dispose(&text);
    buf_dispose(&next);
}
END_TEST

Suite *conffile_suite(void)
{
    Suite *s = suite_create("conffile");
    TCase *tc = tcase_create("replace_span");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, shorter_replacement_pads_to_keep_columns);
    tcase_add_test(tc, longer_replacement_absorbs_blanks);
    tcase_add_test(tc, longer_than_the_gap_keeps_one_blank);
    tcase_add_test(tc, equal_length_changes_only_the_span);
    tcase_add_test(tc, span_at_end_of_line_gets_no_padding);
    tcase_add_test(tc, trailing_comment_is_kept);
    tcase_add_test(tc, span_inside_a_word_is_not_padded);
    tcase_add_test(tc, tabs_are_not_consumed);
    tcase_add_test(tc, widths_count_characters_not_bytes);
    tcase_add_test(tc, crlf_line_endings_are_kept);
    tcase_add_test(tc, missing_final_newline_stays_missing);
    tcase_add_test(tc, empty_lines_exist_and_accept_insertions);
    tcase_add_test(tc, lines_and_spans_out_of_range_fail);
    tcase_add_test(tc, untouched_lines_survive_byte_for_byte);
    suite_add_tcase(s, tc);

    tc = tcase_create("files");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_unchecked_fixture(tc, make_root, scratch_root_remove);
    tcase_add_test(tc, read_appends_the_whole_file);
    tcase_add_test(tc, read_of_a_missing_file_reports_path_and_reason);
    tcase_add_test(tc, write_replaces_content_and_keeps_mode);
    tcase_add_test(tc, write_through_a_symlink_replaces_the_target);
    tcase_add_test(tc, write_into_a_read_only_directory_fails_cleanly);
    tcase_add_test(tc, write_that_cannot_create_the_temporary_fails_cleanly);
    tcase_add_test(tc, write_that_fails_halfway_removes_the_temporary);
    tcase_add_test(tc, write_to_a_missing_path_or_a_directory_fails);
    tcase_add_test(tc, flipping_a_route_round_trips_through_the_file);
    suite_add_tcase(s, tc);
    return s;
}
