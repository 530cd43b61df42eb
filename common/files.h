/*
 * files: what several modules need of the file system and nothing in libc
 * offers whole: making a folder and the folders above it (mkdir -p), for the
 * spool and the log files routes.conf names, so that a fresh checkout's
 * ./var needs no step before the first start.
 */
#ifndef STRANGLER_COMMON_FILES_H
#define STRANGLER_COMMON_FILES_H

/* Creates each missing folder of `path` (mode 0755 before the umask).
 * Returns 0, or -1 with errno set. */
int files_make_dirs(const char *path);

/* The same for the folder a file at `path` goes in ("a/b/c.log": a/b).
 * A path without a folder part needs nothing. */
int files_make_parent_dirs(const char *path);

#endif
