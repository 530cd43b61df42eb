/*
 * scratch: the unit tests' temporary directories (see scratch.h).
 */
#include "scratch.h"

#include "common/buf.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The root of the running test case; "" when there is none. */
static char root[PATH_MAX];

void scratch_root_make(const char *prefix)
{
    snprintf(root, sizeof(root), "/tmp/strangler-%s-XXXXXX", prefix);
    if (mkdtemp(root) == NULL) {
        fprintf(stderr, "scratch: mkdtemp %s: %s\n", root, strerror(errno));
        root[0] = '\0';
    }
}

static int make_writable(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)ftw;
    if (type == FTW_D || type == FTW_DNR)
        chmod(path, (st->st_mode & 07777) | 0700);
    return 0;
}

static int remove_entry(const char *path, const struct stat *st, int type, struct FTW *ftw)
{
    (void)st;
    (void)type;
    (void)ftw;
    remove(path); /* on failure, go on with the rest */
    return 0;
}

void scratch_root_remove(void)
{
    if (root[0] == '\0')
        return;
    nftw(root, make_writable, 16, FTW_PHYS);
    nftw(root, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
    root[0] = '\0';
}

void scratch_dir(const char *name, char *out, size_t size)
{
    ck_assert_msg(root[0] != '\0', "could not create a directory under /tmp");
    snprintf(out, size, "%s/%s-XXXXXX", root, name);
    ck_assert_msg(mkdtemp(out) != NULL, "mkdtemp %s: %s", out, strerror(errno));
}

void scratch_write(const char *path, const char *text, mode_t mode)
{
    size_t len = strlen(text);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    ck_assert_msg(fd >= 0, "%s: %s", path, strerror(errno));
    ck_assert_int_eq(write(fd, text, len), (ssize_t)len);
    ck_assert_int_eq(fchmod(fd, mode), 0);
    ck_assert_int_eq(close(fd), 0);
}

void scratch_assert_file(const char *path, const char *expected)
{
    struct buf got = BUF_INIT;
    char chunk[4096];
    size_t n;
    FILE *f = fopen(path, "rb");
    ck_assert_msg(f != NULL, "%s: %s", path, strerror(errno));
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        buf_append(&got, chunk, n);
    ck_assert(!ferror(f));
    fclose(f);
    ck_assert_str_eq(buf_cstr(&got), expected);
    buf_dispose(&got);
}
