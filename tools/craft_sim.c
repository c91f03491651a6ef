/* craft-sim: lists and runs the simulator's scenarios over ranges of seeds.
 *
 *   craft-sim list
 *   craft-sim run NAME... [--seeds A-B] [--jobs J]   one forked worker per (scenario, seed)
 *   craft-sim run NAME --seed S [--trace]            one seed, in this process
 *
 * Each run gets its own process so that a failed check, an assertion or a crash ends only
 * that run, and so that runs proceed in parallel. A worker's standard output is discarded
 * and its standard error is held back: it is printed only if the run fails, so a sweep of
 * thousands of seeds prints only what needs reading. */
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/assert.h"
#include "sim/scenario.h"

enum {
    EXIT_BAD_ARGS = 2,
    FAILING_SEEDS_LISTED_MAX = 10,
    DEFAULT_SEED_FIRST = 1,
    DEFAULT_SEED_LAST = 20,
};

/* A failing worker's standard error is kept up to this size: its head (where the run
 * starts) and its tail (where the failure message is); the middle is dropped. */
#define STDERR_HEAD_BYTES ((size_t)64 * 1024)
#define STDERR_KEEP_BYTES ((size_t)1024 * 1024)

static const char usage_text[] =
    "usage: craft-sim list\n"
    "       craft-sim run NAME... [--seeds A-B] [--jobs J]\n"
    "       craft-sim run --swarm [--seeds A-B]   (the swarm/* scenarios: a fault mix per seed)\n"
    "       craft-sim run NAME --seed S [--trace]\n"
    "\n"
    "NAME is a scenario name (see 'craft-sim list'), 'all', a prefix ending in '/'\n"
    "(e.g. 'raft/'), or a glob with '*' (e.g. 'raft/*-2c').\n"
    "\n"
    "  --seeds A-B  run every seed in [A, B] (or one seed: --seeds A); default 1-20\n"
    "  --jobs J     run at most J seeds at once, each in its own process;\n"
    "               default: the number of online CPUs\n"
    "  --seed S     run seed S of one scenario in this process (no fork)\n"
    "  --trace      with --seed: write every trace line to standard output\n"
    "  --capped-share P  scenarios with a seed share (sim_seed_shares: the kvraft ones)\n"
    "               run the first P per mille of the seeds (default: their own share)\n"
    "\n"
    "A sweep prints the standard error of each failed run, then a table per scenario,\n"
    "then 'N passed, M failed' (seeds). Exit status: 0 if every run passed, 1 if any\n"
    "failed, 2 on bad arguments.\n";

static _Noreturn void die_usage(const char *fmt, const char *arg)
{
    fputs("craft-sim: ", stderr);
    fprintf(stderr, fmt, arg);
    fputs("\nrun 'craft-sim --help' for usage\n", stderr);
    exit(EXIT_BAD_ARGS);
}

static _Noreturn void die_errno(const char *what)
{
    fprintf(stderr, "craft-sim: %s: %s\n", what, strerror(errno));
    exit(EXIT_FAILURE);
}

/* Parses a whole decimal uint64; false on anything else (sign, junk, overflow). */
static bool parse_u64(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9') {
        return false;
    }
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno != 0 || *end != '\0') {
        return false;
    }
    *out = (uint64_t)v;
    return true;
}

static bool parse_seed_range(const char *s, uint64_t *first, uint64_t *last)
{
    const char *dash = strchr(s, '-');
    if (dash == NULL) {
        if (!parse_u64(s, first)) {
            return false;
        }
        *last = *first;
        return true;
    }
    char a[32];
    size_t a_len = (size_t)(dash - s);
    if (a_len == 0 || a_len >= sizeof a) {
        return false;
    }
    memcpy(a, s, a_len);
    a[a_len] = '\0';
    return parse_u64(a, first) && parse_u64(dash + 1, last) && *first <= *last;
}

/* ---- scenario selection ---- */

static bool pattern_matches(const char *pattern, const char *name)
{
    if (strcmp(pattern, "all") == 0) {
        return true;
    }
    size_t len = strlen(pattern);
    if (len > 0 && pattern[len - 1] == '/') {
        return strncmp(pattern, name, len) == 0;
    }
    if (strpbrk(pattern, "*?[") != NULL) {
        return fnmatch(pattern, name, 0) == 0;
    }
    return strcmp(pattern, name) == 0;
}

/* Marks the scenarios matched by the patterns in selected[] (registry order, no duplicates);
 * returns how many are selected. A pattern that matches nothing is a usage error. */
static size_t select_scenarios(char **patterns, size_t n_patterns, bool *selected)
{
    for (size_t k = 0; k < n_patterns; k++) {
        bool any = false;
        for (size_t i = 0; i < sim_n_scenarios; i++) {
            if (pattern_matches(patterns[k], sim_scenarios[i].name)) {
                selected[i] = true;
                any = true;
            }
        }
        if (!any) {
            die_usage("no scenario matches '%s' (see 'craft-sim list')", patterns[k]);
        }
    }
    size_t n_selected = 0;
    for (size_t i = 0; i < sim_n_scenarios; i++) {
        n_selected += selected[i];
    }
    return n_selected;
}

/* ---- one run in a forked worker ---- */

struct run {
    size_t scenario;
    uint64_t seed;
    pid_t pid;
    int err_fd;         /* read end of the worker's standard error; -1 at EOF */
    int res_fd;         /* read end of the result pipe; -1 at EOF */
    struct sim_run_result result;
    size_t result_bytes;
    char *err;          /* captured standard error */
    size_t err_len;
    size_t err_cap;
    size_t err_dropped; /* bytes dropped from the middle */
    struct timespec started;
    double wall_ms;
    bool reported;      /* the worker sent a whole result */
    int status;         /* from waitpid */
    bool passed;
};

static double ms_between(const struct timespec *a, const struct timespec *b)
{
    return (double)(b->tv_sec - a->tv_sec) * 1e3 + (double)(b->tv_nsec - a->tv_nsec) / 1e6;
}

static void write_all(int fd, const void *buf, size_t len)
{
    const char *p = buf;
    while (len > 0) {
        ssize_t n = write(fd, p, len);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            _exit(EXIT_FAILURE);
        }
        p += n;
        len -= (size_t)n;
    }
}

/* In the worker: runs the scenario and reports back. Never returns. */
static _Noreturn void worker(const struct run *r, int err_w, int res_w)
{
    int devnull = open("/dev/null", O_WRONLY);
    if (devnull < 0 || dup2(devnull, STDOUT_FILENO) < 0 || dup2(err_w, STDERR_FILENO) < 0) {
        _exit(EXIT_FAILURE);
    }
    close(devnull);
    close(err_w);
    struct sim_run_result result = sim_run_scenario(&sim_scenarios[r->scenario], r->seed, false);
    fflush(stdout);
    fflush(stderr);
    write_all(res_w, &result, sizeof result);
    close(res_w);
    /* exit, not _exit: under BUILD=asan the leak check runs at exit, and a leak fails the
     * run. Nothing is buffered twice: run_start flushed stdio before forking. */
    exit(result.passed ? EXIT_SUCCESS : EXIT_FAILURE);
}

static void run_start(struct run *r, struct run *const *running, size_t n_running)
{
    int err_pipe[2], res_pipe[2];
    if (pipe(err_pipe) != 0 || pipe(res_pipe) != 0) {
        die_errno("pipe");
    }
    /* Nothing buffered may be written twice, once by each process. */
    fflush(stdout);
    fflush(stderr);
    clock_gettime(CLOCK_MONOTONIC, &r->started);
    pid_t pid = fork();
    if (pid < 0) {
        die_errno("fork");
    }
    if (pid == 0) {
        /* The worker holds no read end: other runs' pipes see EOF when their own writer ends. */
        for (size_t i = 0; i < n_running; i++) {
            if (running[i]->err_fd >= 0) {
                close(running[i]->err_fd);
            }
            if (running[i]->res_fd >= 0) {
                close(running[i]->res_fd);
            }
        }
        close(err_pipe[0]);
        close(res_pipe[0]);
        worker(r, err_pipe[1], res_pipe[1]);
    }
    close(err_pipe[1]);
    close(res_pipe[1]);
    r->pid = pid;
    r->err_fd = err_pipe[0];
    r->res_fd = res_pipe[0];
}

static void err_append(struct run *r, const char *buf, size_t len)
{
    if (r->err_len + len > r->err_cap) {
        size_t cap = r->err_cap ? r->err_cap : 4096;
        while (cap < r->err_len + len) {
            cap *= 2;
        }
        if (cap > STDERR_KEEP_BYTES + len) {
            cap = STDERR_KEEP_BYTES + len;
        }
        char *grown = realloc(r->err, cap);
        if (grown == NULL) {
            die_errno("realloc");
        }
        r->err = grown;
        r->err_cap = cap;
    }
    memcpy(r->err + r->err_len, buf, len);
    r->err_len += len;
    if (r->err_len > STDERR_KEEP_BYTES) {
        /* Drop from just after the head so the tail, with the failure, stays. */
        size_t drop = r->err_len - STDERR_KEEP_BYTES + STDERR_KEEP_BYTES / 4;
        CRAFT_ASSERT(STDERR_HEAD_BYTES + drop <= r->err_len);
        memmove(r->err + STDERR_HEAD_BYTES, r->err + STDERR_HEAD_BYTES + drop,
                r->err_len - STDERR_HEAD_BYTES - drop);
        r->err_len -= drop;
        r->err_dropped += drop;
    }
}

/* Reads what is available on fd; closes it and sets it to -1 at EOF. */
static void run_read(struct run *r, int *fd)
{
    char buf[65536];
    ssize_t n = read(*fd, buf, sizeof buf);
    if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) {
            return;
        }
        die_errno("read");
    }
    if (n == 0) {
        close(*fd);
        *fd = -1;
        return;
    }
    if (fd == &r->err_fd) {
        err_append(r, buf, (size_t)n);
        return;
    }
    size_t room = sizeof r->result - r->result_bytes;
    size_t take = (size_t)n < room ? (size_t)n : room;
    memcpy((char *)&r->result + r->result_bytes, buf, take);
    r->result_bytes += take;
}

/* After both pipes closed: reaps the worker and decides the outcome. */
static void run_finish(struct run *r)
{
    while (waitpid(r->pid, &r->status, 0) < 0) {
        if (errno != EINTR) {
            die_errno("waitpid");
        }
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    r->wall_ms = ms_between(&r->started, &now);
    r->reported = r->result_bytes == sizeof r->result;
    r->passed = r->reported && r->result.passed && WIFEXITED(r->status) &&
                WEXITSTATUS(r->status) == EXIT_SUCCESS;
    if (r->passed) {
        return;
    }
    const char *name = sim_scenarios[r->scenario].name;
    if (r->err_dropped > 0) {
        fwrite(r->err, 1, STDERR_HEAD_BYTES, stderr);
        fprintf(stderr, "\n[craft-sim: %zu bytes of standard error dropped here]\n",
                r->err_dropped);
        fwrite(r->err + STDERR_HEAD_BYTES, 1, r->err_len - STDERR_HEAD_BYTES, stderr);
    } else if (r->err_len > 0) {
        fwrite(r->err, 1, r->err_len, stderr);
    }
    if (WIFSIGNALED(r->status)) {
        fprintf(stderr, "craft-sim: %s seed %" PRIu64 ": killed by signal %d (%s)\n", name,
                r->seed, WTERMSIG(r->status), strsignal(WTERMSIG(r->status)));
    } else if (!r->reported) {
        fprintf(stderr, "craft-sim: %s seed %" PRIu64 ": exited with status %d without a result\n",
                name, r->seed, WIFEXITED(r->status) ? WEXITSTATUS(r->status) : -1);
    }
    fflush(stderr);
}

/* Runs every run, at most jobs at once. */
static void run_all(struct run *runs, size_t n_runs, size_t jobs)
{
    struct run **running = calloc(jobs, sizeof *running);
    struct pollfd *fds = calloc(2 * jobs, sizeof *fds);
    int *fd_owner = calloc(2 * jobs, sizeof *fd_owner);
    if (running == NULL || fds == NULL || fd_owner == NULL) {
        die_errno("calloc");
    }
    size_t next = 0, n_running = 0;
    while (next < n_runs || n_running > 0) {
        while (n_running < jobs && next < n_runs) {
            run_start(&runs[next], running, n_running);
            running[n_running++] = &runs[next++];
        }

        size_t n_fds = 0;
        for (size_t i = 0; i < n_running; i++) {
            if (running[i]->err_fd >= 0) {
                fds[n_fds] = (struct pollfd){ .fd = running[i]->err_fd, .events = POLLIN };
                fd_owner[n_fds++] = (int)i;
            }
            if (running[i]->res_fd >= 0) {
                fds[n_fds] = (struct pollfd){ .fd = running[i]->res_fd, .events = POLLIN };
                fd_owner[n_fds++] = (int)i;
            }
        }
        CRAFT_ASSERT(n_fds > 0);
        if (poll(fds, (nfds_t)n_fds, -1) < 0) {
            if (errno == EINTR) {
                continue;
            }
            die_errno("poll");
        }
        for (size_t k = 0; k < n_fds; k++) {
            if ((fds[k].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
                continue;
            }
            struct run *r = running[fd_owner[k]];
            run_read(r, fds[k].fd == r->err_fd ? &r->err_fd : &r->res_fd);
        }

        /* Reap the runs whose pipes are both closed. */
        for (size_t i = 0; i < n_running;) {
            if (running[i]->err_fd < 0 && running[i]->res_fd < 0) {
                run_finish(running[i]);
                running[i] = running[--n_running];
            } else {
                i++;
            }
        }
    }
    free(fd_owner);
    free(fds);
    free(running);
}

/* Prints the per-scenario table and the totals; returns the number of failed runs. */
static size_t print_table(const struct run *runs, size_t n_runs)
{
    int name_w = (int)strlen("scenario");
    for (size_t k = 0; k < n_runs; k++) {
        int len = (int)strlen(sim_scenarios[runs[k].scenario].name);
        name_w = len > name_w ? len : name_w;
    }
    printf("%-*s  %6s  %6s  %9s  %9s  %s\n", name_w, "scenario", "passed", "failed", "virtual_s",
           "wall_ms", "failing seeds");

    size_t total_passed = 0, total_failed = 0;
    for (size_t k = 0; k < n_runs;) {
        size_t scenario = runs[k].scenario;
        size_t passed = 0, failed = 0, reported = 0;
        double virtual_ms = 0, wall_ms = 0;
        char seeds[256] = "";
        size_t seeds_len = 0;
        size_t end = k;
        for (; end < n_runs && runs[end].scenario == scenario; end++) {
            const struct run *r = &runs[end];
            wall_ms += r->wall_ms;
            if (r->reported) {
                reported++;
                virtual_ms += (double)r->result.virtual_ms;
            }
            if (r->passed) {
                passed++;
                continue;
            }
            failed++;
            if (failed <= FAILING_SEEDS_LISTED_MAX) {
                int len = snprintf(seeds + seeds_len, sizeof seeds - seeds_len, "%s%" PRIu64,
                                   failed == 1 ? "" : " ", r->seed);
                CRAFT_ASSERT(len > 0 && (size_t)len < sizeof seeds - seeds_len);
                seeds_len += (size_t)len;
            } else if (failed == FAILING_SEEDS_LISTED_MAX + 1) {
                snprintf(seeds + seeds_len, sizeof seeds - seeds_len, " ...");
                seeds_len = strlen(seeds);
            }
        }
        double n = (double)(end - k);
        printf("%-*s  %6zu  %6zu  %9.1f  %9.1f  %s\n", name_w, sim_scenarios[scenario].name,
               passed, failed, reported ? virtual_ms / (double)reported / 1e3 : 0.0, wall_ms / n,
               seeds);
        total_passed += passed;
        total_failed += failed;
        k = end;
    }
    printf("%zu passed, %zu failed\n", total_passed, total_failed);
    fflush(stdout);
    return total_failed;
}

/* How many of n seeds scenario i runs (sim_seed_shares; share_override > 0 replaces the
 * share of every scenario that has one). */
static uint64_t seeds_for(size_t i, uint64_t n, uint64_t share_override)
{
    for (size_t k = 0; k < sim_n_seed_shares; k++) {
        const char *prefix = sim_seed_shares[k].prefix;
        if (strncmp(sim_scenarios[i].name, prefix, strlen(prefix)) == 0) {
            uint64_t pm = share_override ? share_override : sim_seed_shares[k].per_mille;
            uint64_t m = n / 1000 * pm + (n % 1000 * pm + 999) / 1000;
            return m == 0 ? 1 : m < n ? m : n;
        }
    }
    return n;
}

static int run_sweep(const bool *selected, uint64_t first, uint64_t last, size_t jobs,
                     uint64_t share_override)
{
    uint64_t n_seeds = last - first + 1;
    size_t n_selected = 0;
    for (size_t i = 0; i < sim_n_scenarios; i++) {
        n_selected += selected[i];
    }
    if (n_seeds == 0 || n_seeds > (uint64_t)SIZE_MAX / (n_selected * sizeof(struct run))) {
        die_usage("too many seeds: %s", "the seed range does not fit in memory");
    }
    size_t n_runs = n_selected * (size_t)n_seeds;
    struct run *runs = calloc(n_runs, sizeof *runs);
    if (runs == NULL) {
        die_errno("calloc");
    }
    size_t k = 0;
    for (size_t i = 0; i < sim_n_scenarios; i++) {
        if (!selected[i]) {
            continue;
        }
        uint64_t mine = seeds_for(i, n_seeds, share_override);
        for (uint64_t seed = first;; seed++) {
            runs[k++] = (struct run){ .scenario = i, .seed = seed, .err_fd = -1, .res_fd = -1 };
            if (seed == last || --mine == 0) {
                break;
            }
        }
    }
    CRAFT_ASSERT(k <= n_runs);
    n_runs = k;
    if (jobs > n_runs) {
        jobs = n_runs;
    }

    run_all(runs, n_runs, jobs);
    size_t failed = print_table(runs, n_runs);

    for (size_t i = 0; i < n_runs; i++) {
        free(runs[i].err);
    }
    free(runs);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

static int run_one(const bool *selected, uint64_t seed, bool trace)
{
    const struct sim_scenario *s = NULL;
    for (size_t i = 0; i < sim_n_scenarios; i++) {
        if (!selected[i]) {
            continue;
        }
        if (s != NULL) {
            die_usage("%s", "--seed runs exactly one scenario, but the names match several");
        }
        s = &sim_scenarios[i];
    }
    CRAFT_ASSERT(s != NULL);
    struct sim_run_result r = sim_run_scenario(s, seed, trace);
    fflush(stdout);
    fprintf(stderr, "%s seed %" PRIu64 ": %s (virtual %" PRIu64 " ms, %" PRIu64 " events)\n",
            s->name, seed, r.passed ? "passed" : "FAILED", r.virtual_ms, r.events);
    return r.passed ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Returns the option's value: "--opt=V" or "--opt V" (advancing *i). */
static const char *option_value(int argc, char **argv, int *i, const char *opt)
{
    size_t len = strlen(opt);
    if (argv[*i][len] == '=') {
        return argv[*i] + len + 1;
    }
    if (*i + 1 >= argc) {
        die_usage("%s needs a value", opt);
    }
    return argv[++*i];
}

static bool is_option(const char *arg, const char *opt)
{
    size_t len = strlen(opt);
    return strncmp(arg, opt, len) == 0 && (arg[len] == '\0' || arg[len] == '=');
}

static int cmd_run(int argc, char **argv)
{
    char **patterns = calloc((size_t)argc, sizeof *patterns);
    if (patterns == NULL) {
        die_errno("calloc");
    }
    size_t n_patterns = 0;
    uint64_t first = DEFAULT_SEED_FIRST, last = DEFAULT_SEED_LAST, seed = 0, jobs = 0, share = 0;
    bool have_seeds = false, have_seed = false, have_jobs = false, trace = false;

    for (int i = 0; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            fputs(usage_text, stdout);
            exit(EXIT_SUCCESS);
        } else if (is_option(arg, "--seeds")) {
            const char *v = option_value(argc, argv, &i, "--seeds");
            if (!parse_seed_range(v, &first, &last)) {
                die_usage("bad --seeds '%s': expected A-B with A <= B, or A", v);
            }
            have_seeds = true;
        } else if (is_option(arg, "--seed")) {
            const char *v = option_value(argc, argv, &i, "--seed");
            if (!parse_u64(v, &seed)) {
                die_usage("bad --seed '%s': expected a non-negative integer", v);
            }
            have_seed = true;
        } else if (is_option(arg, "--jobs")) {
            const char *v = option_value(argc, argv, &i, "--jobs");
            if (!parse_u64(v, &jobs) || jobs == 0 || jobs > 4096) {
                die_usage("bad --jobs '%s': expected an integer in [1, 4096]", v);
            }
            have_jobs = true;
        } else if (is_option(arg, "--capped-share")) {
            const char *v = option_value(argc, argv, &i, "--capped-share");
            if (!parse_u64(v, &share) || share == 0 || share > 1000) {
                die_usage("bad --capped-share '%s': expected an integer in [1, 1000]", v);
            }
        } else if (strcmp(arg, "--trace") == 0) {
            trace = true;
        } else if (strcmp(arg, "--swarm") == 0) {
            patterns[n_patterns++] = "swarm/*"; /* every scenario that draws its fault mix */
        } else if (arg[0] == '-') {
            die_usage("unknown option '%s'", arg);
        } else {
            patterns[n_patterns++] = argv[i];
        }
    }

    if (n_patterns == 0) {
        die_usage("%s", "run needs at least one scenario NAME");
    }
    if (have_seed && (have_seeds || have_jobs)) {
        die_usage("%s", "--seed runs one seed in-process: it excludes --seeds and --jobs");
    }
    if (trace && !have_seed) {
        die_usage("%s", "--trace needs --seed S (a sweep discards its workers' output)");
    }

    bool *selected = calloc(sim_n_scenarios ? sim_n_scenarios : 1, sizeof *selected);
    if (selected == NULL) {
        die_errno("calloc");
    }
    select_scenarios(patterns, n_patterns, selected);

    int rc;
    if (have_seed) {
        rc = run_one(selected, seed, trace);
    } else {
        if (!have_jobs) {
            long cpus = sysconf(_SC_NPROCESSORS_ONLN);
            jobs = cpus > 0 ? (uint64_t)cpus : 1;
        }
        rc = run_sweep(selected, first, last, (size_t)jobs, share);
    }
    free(selected);
    free(patterns);
    return rc;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fputs(usage_text, stderr);
        return EXIT_BAD_ARGS;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0 || strcmp(cmd, "help") == 0) {
        fputs(usage_text, stdout);
        return EXIT_SUCCESS;
    }
    if (strcmp(cmd, "list") == 0) {
        if (argc > 2) {
            die_usage("list takes no arguments, got '%s'", argv[2]);
        }
        for (size_t i = 0; i < sim_n_scenarios; i++) {
            printf("%s\n", sim_scenarios[i].name);
        }
        return EXIT_SUCCESS;
    }
    if (strcmp(cmd, "run") == 0) {
        return cmd_run(argc - 2, argv + 2);
    }
    die_usage("unknown command '%s'", cmd);
}
