/*
 * The unit test runner: every suite generated into suites.inc from the
 * tests/unit/test_<module>.c files, or only the ones named on the command
 * line ("unit_tests router config"). Check's fork mode stays on, so a crash
 * in one test fails that test, not the run.
 */
#include "unit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct suite_entry {
    const char *name;
    Suite *(*make)(void);
};

static const struct suite_entry all_suites[] = {
#define SUITE(name) {#name, name##_suite},
#include "suites.inc"
#undef SUITE
};

static int wanted(const char *name, int argc, char **argv)
{
    if (argc < 2)
        return 1;
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], name) == 0)
            return 1;
    return 0;
}

int main(int argc, char **argv)
{
    SRunner *runner = NULL;
    size_t n = sizeof(all_suites) / sizeof(all_suites[0]);

    for (size_t i = 0; i < n; i++) {
        if (!wanted(all_suites[i].name, argc, argv))
            continue;
        if (runner == NULL)
            runner = srunner_create(all_suites[i].make());
        else
            srunner_add_suite(runner, all_suites[i].make());
    }
    if (runner == NULL) {
        fprintf(stderr, "unit_tests: no suite matches the arguments\n");
        return EXIT_FAILURE;
    }
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
