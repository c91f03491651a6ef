/* Always-on assertions (TigerBeetle style): invariants are checked in release builds too.
 *
 * A failed assertion prints the condition and location, runs the registered hook (the
 * simulator uses it to print the seed and the replay command) and aborts. */
#ifndef CRAFT_BASE_ASSERT_H
#define CRAFT_BASE_ASSERT_H

#define CRAFT_ASSERT(cond) \
    ((cond) ? (void)0 : craft_assert_fail(#cond, __FILE__, __LINE__, __func__))

/* For states that cannot be reached. */
#define CRAFT_UNREACHABLE() craft_assert_fail("unreachable", __FILE__, __LINE__, __func__)

_Noreturn void craft_assert_fail(const char *cond, const char *file, int line, const char *func);

/* Registers a hook run after the failure message and before abort(). One per process;
 * NULL removes it. Not thread-safe: set it once at start-up. */
void craft_assert_set_hook(void (*hook)(void *ctx), void *ctx);

#endif
