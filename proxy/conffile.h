/*
 * conffile: editing routes.conf in place, the way a person would.
 *
 * During a migration a team moves a route to the new service through the
 * admin API (`PUT /routes/NAME {"action": "stock-svc"}`). That decision has
 * to survive a restart, so it goes back into routes.conf; but routes.conf is
 * a file people keep by hand, with comments, blank lines and columns lined
 * up, and a rewrite that regenerated it from the parsed table would destroy
 * all of that. This module therefore changes only the bytes it is asked to
 * change, nudges the blanks after them so the columns to the right stay
 * where they were, and swaps the result in atomically: after a crash the
 * file on disk is either the old one or the new one, never a mix.
 *
 * The module owns nothing between calls. Locating the span to replace (which
 * line holds the route, where its action starts) is the caller's job: the
 * config parser knows the positions, this module only knows bytes.
 */
#ifndef STRANGLER_PROXY_CONFFILE_H
#define STRANGLER_PROXY_CONFFILE_H

#include "common/buf.h"

#include <stddef.h>

/*
 * Reads the whole file at path and appends its bytes to out. Returns 0, or
 * -1 with "PATH: strerror" in err (errlen bytes, always NUL-terminated); on
 * failure out is left as it was. The caller owns out and disposes of it.
 */
int conffile_read(const char *path, struct buf *out, char *err, size_t errlen);

/*
 * Appends to out a copy of text (len bytes) in which bytes [start, end) of
 * line `line` (1-based; start and end are byte offsets from the beginning of
 * that line, end >= start) are replaced by `replacement` (NUL-terminated).
 *
 * The layout is kept. When the replacement is shorter than what it replaces
 * and the span is followed on that line by blanks and then more text
 * (options, a comment), spaces make up the difference so that text stays in
 * its column. When it is longer, spaces in the blank run after the span are
 * consumed to absorb the difference, but at least one blank always stays
 * before the following text (so the text moves right only when the run is
 * too short). Widths are counted in characters, not bytes, so a UTF-8 name
 * keeps the columns too. A span at the end of its line, or one that runs
 * straight into more text with no blank between, gets no adjustment.
 *
 * Everything else (other lines, the line ending CRLF or LF, a missing final
 * newline) is copied byte for byte; the replacement itself is copied as is,
 * so it must not contain a line break.
 *
 * Returns 0, or -1 when the line or the span does not exist in text (line
 * below 1 or past the last line, end beyond the line's last byte before its
 * line ending, start > end); out is untouched on -1. The caller owns out.
 */
int conffile_replace_span(const char *text, size_t len, int line, size_t start, size_t end,
                          const char *replacement, struct buf *out);

/*
 * Replaces the file at path with data (len bytes), atomically: writes a
 * temporary file ".<basename>.XXXXXX" in the same directory (mkstemp
 * family), gives it the owner and group (fchown, skipped on EPERM) and the
 * permission bits (fchmod) of the current file, writes everything, fsync()s
 * it, renames it over the file, then fsync()s the directory so the rename
 * itself is durable. When path is a symbolic link, the file it points to is
 * replaced (resolved with realpath), and the link stays a link. The file
 * must already exist.
 *
 * Returns 0 on success. On failure returns -1 with "PATH: STEP: strerror" in
 * err (errlen bytes), the temporary file removed and the original untouched;
 * the one exception is a failure to fsync the directory, which is reported
 * too although the new content is already in place (it may just not survive
 * a power cut).
 */
int conffile_write_atomic(const char *path, const char *data, size_t len, char *err, size_t errlen);

#endif
