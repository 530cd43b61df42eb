/*
 * Scratch directories for the unit tests that work on real files. A test
 * case gets one root directory under /tmp, made and removed by an unchecked
 * fixture: that runs in the runner's process, so the root goes away with
 * everything in it even when a test fails halfway in its forked child, and
 * even when it left a directory read-only. Each test makes its own fresh
 * directory inside the root with scratch_dir(), writes its files with
 * scratch_write() and checks them with scratch_assert_file().
 *
 *     static void make_root(void) { scratch_root_make("control"); }
 *     ...
 *     tcase_add_unchecked_fixture(tc, make_root, scratch_root_remove);
 *
 * There is one root at a time: test cases run one after the other.
 */
#ifndef STRANGLER_TESTS_SCRATCH_H
#define STRANGLER_TESTS_SCRATCH_H

#include <stddef.h>
#include <sys/types.h>

/* Makes the root, /tmp/strangler-<prefix>-XXXXXX. Outside a test, so it
 * does not fail: when mkdtemp() does, scratch_dir() fails each test. */
void scratch_root_make(const char *prefix);

/* Removes the root and everything below it, making read-only directories
 * writable first. Harmless when scratch_root_make() failed. */
void scratch_root_remove(void);

/* Makes a new directory <root>/<name>-XXXXXX and puts its path in out
 * (PATH_MAX bytes are enough). Fails the test when it cannot. */
void scratch_dir(const char *name, char *out, size_t size);

/* Creates or truncates the file at path to hold text, with the mode set
 * to `mode` whatever the umask. Fails the test when it cannot. */
void scratch_write(const char *path, const char *text, mode_t mode);

/* Fails the test unless the file at path holds exactly `expected`. It reads
 * with stdio, so that code under test that reads files is not testing
 * itself. */
void scratch_assert_file(const char *path, const char *expected);

#endif
