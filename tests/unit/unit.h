/* The unit tests' shared harness: CHECK records a failed check with file, line and the
 * current seed (set cur_seed in a case that draws randomness) without stopping the case;
 * run_case runs one case; unit_finish prints the closing line `N passed, M failed` (cases)
 * and returns the exit status. One test program per file, so these statics are per test. */
#ifndef CRAFT_TESTS_UNIT_H
#define CRAFT_TESTS_UNIT_H

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

static int n_passed, n_failed;
static bool case_failed;
static uint64_t cur_seed;

#define CHECK(cond)                                                                        \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            printf("%s:%d: check failed: %s (seed %" PRIu64 ")\n", __FILE__, __LINE__,     \
                   #cond, cur_seed);                                                       \
            case_failed = true;                                                            \
        }                                                                                  \
    } while (0)

static inline void run_case(const char *name, void (*fn)(void))
{
    case_failed = false;
    cur_seed = 0;
    fn();
    if (case_failed) {
        printf("FAIL %s\n", name);
        n_failed++;
    } else {
        n_passed++;
    }
}

static inline int unit_finish(void)
{
    printf("%d passed, %d failed\n", n_passed, n_failed);
    return n_failed == 0 ? 0 : 1;
}

#endif
