/*
 * conffile: in-place edits of routes.conf (see conffile.h for the contract).
 *
 * Two halves that never meet: conffile_replace_span() is pure text surgery
 * on a buffer, so it can be tested byte for byte without a disk, and
 * conffile_write_atomic() is the usual write-temporary, fsync, rename,
 * fsync-directory sequence that makes a replacement crash-safe on POSIX
 * filesystems.
 */
#include "proxy/conffile.h"

#include "common/buf.h"
#include "common/mem.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define READ_CHUNK ((size_t)64 << 10)

/* ---- errors ---- */

/* Formats "PATH: STEP: strerror", or "PATH: strerror" when step is NULL. */
static void set_err(char *err, size_t errlen, const char *path, const char *step, int e)
{
    char tmp[128];
    const char *text;

    if (err == NULL || errlen == 0)
        return;
    text = strerror_r(e, tmp, sizeof(tmp)); /* the GNU variant: returns the text */
    if (step != NULL)
        snprintf(err, errlen, "%s: %s: %s", path, step, text);
    else
        snprintf(err, errlen, "%s: %s", path, text);
}

/* ---- reading ---- */

int conffile_read(const char *path, struct buf *out, char *err, size_t errlen)
{
    int rc = -1;
    int fd = -1;
    size_t old_len = out->len;

    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, path, NULL, errno);
        goto out;
    }
    for (;;) {
        ssize_t n;

        buf_reserve(out, READ_CHUNK);
        n = read(fd, out->data + out->len, out->cap - out->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            set_err(err, errlen, path, NULL, errno);
            goto out;
        }
        if (n == 0)
            break;
        out->len += (size_t)n;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (rc != 0)
        out->len = old_len; /* the caller sees either the whole file or nothing */
    return rc;
}

/* ---- text surgery ---- */

static int is_blank(char c)
{
    return c == ' ' || c == '\t';
}

/*
 * Columns that len bytes of UTF-8 take: one per character, i.e. per byte
 * that is not a continuation byte (10xxxxxx). Counting bytes instead would
 * push the next column left by one for every accented letter in a name.
 */
static size_t text_width(const char *s, size_t len)
{
    size_t w = 0;

    for (size_t i = 0; i < len; i++)
        if (((unsigned char)s[i] & 0xC0) != 0x80)
            w++;
    return w;
}

int conffile_replace_span(const char *text, size_t len, int line, size_t start, size_t end,
                          const char *replacement, struct buf *out)
{
    int rc = -1;
    size_t begin = 0;  /* first byte of the line */
    size_t stop;       /* one past its last byte, line ending excluded */
    size_t span_end;   /* end of the span, as an offset into text */
    size_t run_end;    /* end of the blank run that follows the span */
    size_t spaces = 0; /* spaces (not tabs) in that run */
    size_t pad = 0;    /* spaces to add after the replacement */
    size_t drop = 0;   /* spaces to take out of the run */
    size_t rlen;
    size_t old_w;
    size_t new_w;
    const char *nl;

    if (line < 1 || start > end || replacement == NULL)
        goto out;
    for (int i = 1; i < line; i++) {
        nl = memchr(text + begin, '\n', len - begin);
        if (nl == NULL)
            goto out;
        begin = (size_t)(nl - text) + 1;
    }
    /* A final newline ends the last line; it does not start an empty one. */
    if (begin >= len)
        goto out;
    nl = memchr(text + begin, '\n', len - begin);
    stop = nl != NULL ? (size_t)(nl - text) : len;
    /* With CRLF the CR belongs to the line ending, not to the text a span may cover. */
    if (nl != NULL && stop > begin && text[stop - 1] == '\r')
        stop--;
    if (end > stop - begin)
        goto out;

    span_end = begin + end;
    run_end = span_end;
    while (run_end < stop && is_blank(text[run_end])) {
        if (text[run_end] == ' ')
            spaces++;
        run_end++;
    }
    rlen = strlen(replacement);
    old_w = text_width(text + begin + start, end - start);
    new_w = text_width(replacement, rlen);
    /*
     * Only a blank run with text after it is a column gap worth preserving:
     * blanks at the end of the line align nothing, and a span with no blank
     * after it is part of a longer word that padding would split.
     */
    if (run_end > span_end && run_end < stop) {
        if (new_w < old_w) {
            pad = old_w - new_w;
        } else if (new_w > old_w) {
            /* Keep one blank so the replacement never fuses with the next word. */
            size_t room = run_end - span_end - 1;

            drop = new_w - old_w;
            if (drop > spaces)
                drop = spaces;
            if (drop > room)
                drop = room;
        }
    }

    buf_append(out, text, begin + start);
    buf_append(out, replacement, rlen);
    for (size_t i = 0; i < pad; i++)
        buf_append_char(out, ' ');
    /*
     * Tabs are left alone when absorbing: removing one would move the text
     * after it by a whole tab stop, while a space before a tab usually moves
     * nothing at all.
     */
    for (size_t i = span_end; i < run_end; i++) {
        if (drop > 0 && text[i] == ' ') {
            drop--;
            continue;
        }
        buf_append_char(out, text[i]);
    }
    buf_append(out, text + run_end, len - run_end);
    rc = 0;
out:
    return rc;
}

/* ---- atomic replacement ---- */

/* Writes all len bytes, riding out short writes and signals. Returns 0 or -1 (errno set). */
static int write_all(int fd, const char *data, size_t len)
{
    int rc = -1;
    size_t done = 0;

    while (done < len) {
        ssize_t n = write(fd, data + done, len - done);

        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            goto out;
        if (n == 0) {
            /* Not expected from a regular file; refuse to spin on it. */
            errno = EIO;
            goto out;
        }
        done += (size_t)n;
    }
    rc = 0;
out:
    return rc;
}

int conffile_write_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen)
{
    int rc = -1;
    int fd = -1;
    int dir_fd = -1;
    int tmp_exists = 0;
    char *target = NULL;
    char *dir = NULL;
    struct buf tmp_name = BUF_INIT;
    const char *slash;
    struct stat st;

    /*
     * Renaming over a symbolic link would replace the link with a regular
     * file and leave its target stale; people link routes.conf into place
     * from a deploy directory, so edit the file the link points to.
     */
    target = realpath(path, NULL);
    if (target == NULL) {
        set_err(err, errlen, path, "resolve path", errno);
        goto out;
    }
    if (stat(target, &st) != 0) {
        set_err(err, errlen, path, "stat", errno);
        goto out;
    }
    if (!S_ISREG(st.st_mode)) {
        if (err != NULL && errlen > 0)
            snprintf(err, errlen, "%s: stat: not a regular file", path);
        goto out;
    }

    /*
     * rename(2) is atomic only within one filesystem, so the temporary file
     * lives next to the target. The leading dot keeps it out of `ls` and of
     * globs like *.conf while it exists. realpath() returns an absolute
     * path, so there is always a slash.
     */
    slash = strrchr(target, '/');
    dir = slash == target ? mem_strdup("/") : mem_strndup(target, (size_t)(slash - target));
    buf_append(&tmp_name, target, (size_t)(slash - target) + 1);
    buf_appendf(&tmp_name, ".%s.XXXXXX", slash + 1);
    buf_cstr(&tmp_name);

    /* O_CLOEXEC: a process forked meanwhile must not inherit the descriptor. */
    fd = mkostemp(tmp_name.data, O_CLOEXEC);
    if (fd < 0) {
        set_err(err, errlen, path, "create temporary file", errno);
        goto out;
    }
    tmp_exists = 1;

    /*
     * Owner first: chown(2) may clear the set-user-ID and set-group-ID bits,
     * which fchmod() then restores. Only root (or CAP_CHOWN) may give a file
     * away, and an unprivileged proxy editing its own file does not need to.
     */
    if (fchown(fd, st.st_uid, st.st_gid) != 0 && errno != EPERM) {
        set_err(err, errlen, path, "chown temporary file", errno);
        goto out;
    }
    /* mkstemp creates the file 0600; a group-readable routes.conf must stay so. */
    if (fchmod(fd, st.st_mode & 07777) != 0) {
        set_err(err, errlen, path, "chmod temporary file", errno);
        goto out;
    }
    if (write_all(fd, data, len) != 0) {
        set_err(err, errlen, path, "write temporary file", errno);
        goto out;
    }
    /* Without this, a crash after the rename can leave the new name on an empty file. */
    if (fsync(fd) != 0) {
        set_err(err, errlen, path, "fsync temporary file", errno);
        goto out;
    }
    /* close() is where some filesystems (NFS) report a failed write. */
    if (close(fd) != 0) {
        fd = -1;
        set_err(err, errlen, path, "close temporary file", errno);
        goto out;
    }
    fd = -1;
    if (rename(tmp_name.data, target) != 0) {
        set_err(err, errlen, path, "rename temporary file", errno);
        goto out;
    }
    tmp_exists = 0;

    /* The rename is a change to the directory; only fsyncing it makes it durable. */
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dir_fd < 0) {
        set_err(err, errlen, path, "open directory", errno);
        goto out;
    }
    if (fsync(dir_fd) != 0) {
        set_err(err, errlen, path, "fsync directory", errno);
        goto out;
    }
    rc = 0;
out:
    if (fd >= 0)
        close(fd);
    if (tmp_exists)
        unlink(tmp_name.data);
    if (dir_fd >= 0)
        close(dir_fd);
    buf_dispose(&tmp_name);
    free(dir);
    free(target);
    return rc;
}
