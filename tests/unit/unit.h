/*
 * What every unit test file includes: Check, and the prototype of each
 * suite, generated from the test_<module>.c file names (suites.inc), so
 * every Suite *<module>_suite(void) has a declaration.
 */
#ifndef STRANGLER_TESTS_UNIT_H
#define STRANGLER_TESTS_UNIT_H

#include <check.h>

#define SUITE(name) Suite *name##_suite(void);
#include "suites.inc"
#undef SUITE

/* Seconds a test case may run before Check fails it. */
#define UNIT_TIMEOUT 30

#endif
