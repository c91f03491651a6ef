/* craft-log: renders a craft trace as one column per node, coloured by topic.
 *
 * Trace lines come from src/base/trace.c:  <time_ms> n<node> <TOPIC> t<term> <text>
 * (node 0 is the simulator). Any other line passes through unchanged, so the output of
 * craft-sim (results, the replay command) stays readable in between.
 *
 * The whole input is read before anything is printed, because the columns (one per node
 * seen) must be known first; traces fit in memory, and only the lines that survive the
 * filters are kept. Input is untrusted: any byte sequence and any line length must work. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "base/assert.h"
#include "base/trace.h"

enum {
    WIDTH_DEFAULT = 40,
    WIDTH_MIN = 8,
    WIDTH_MAX = 1000,
    /* Beyond this many distinct node ids the input is not a cluster trace any more; the
     * extra nodes' lines pass through raw instead of producing kilometre-wide rows. */
    COLUMNS_MAX = 64,
    TOPIC_LEN_MAX = 15,
    LIST_MAX = 64, /* entries in --topics / --nodes */
};

struct event {
    bool raw; /* a passed-through line: text is the whole line */
    uint64_t time_ms;
    uint64_t node;
    uint64_t term;
    char topic[TOPIC_LEN_MAX + 1];
    char *text; /* owned; for events at most width bytes (the cell is truncated anyway) */
    size_t text_len;
};

struct name_list {
    size_t n;
    char names[LIST_MAX][TOPIC_LEN_MAX + 1];
};

struct node_list {
    size_t n;
    uint64_t ids[LIST_MAX];
};

struct options {
    int width;
    int color; /* -1: automatic (a tty and NO_COLOR unset) */
    bool have_topics;
    struct name_list topics;
    struct name_list exclude_topics;
    bool have_nodes;
    struct node_list nodes;
    const char *path; /* NULL or "-": standard input */
};

struct trace {
    struct event *events;
    size_t n_events;
    size_t cap_events;
    uint64_t columns[COLUMNS_MAX]; /* node ids, sorted */
    size_t n_columns;
    uint64_t time_max;
};

/* ---- parsing ---- */

/* Reads a decimal number and advances *p; false if there is none or it overflows. */
static bool parse_u64(const char **p, const char *end, uint64_t *out)
{
    const char *s = *p;
    uint64_t v = 0;
    while (s < end && *s >= '0' && *s <= '9') {
        uint64_t d = (uint64_t)(*s - '0');
        if (v > (UINT64_MAX - d) / 10) {
            return false;
        }
        v = v * 10 + d;
        s++;
    }
    if (s == *p) {
        return false;
    }
    *p = s;
    *out = v;
    return true;
}

static bool is_topic_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* Parses one trace line into ev (without its text, which the caller copies from
 * *text_out). Returns false for any line that is not exactly in the trace format. */
static bool parse_trace_line(const char *line, size_t len, struct event *ev, const char **text_out,
                             size_t *text_len_out)
{
    const char *p = line;
    const char *end = line + len;
    while (p < end && *p == ' ') {
        p++;
    }
    if (!parse_u64(&p, end, &ev->time_ms)) {
        return false;
    }
    if (end - p < 2 || p[0] != ' ' || p[1] != 'n') {
        return false;
    }
    p += 2;
    if (!parse_u64(&p, end, &ev->node) || p == end || *p != ' ') {
        return false;
    }
    p++;
    size_t topic_len = 0;
    while (p < end && is_topic_char(*p)) {
        if (topic_len == TOPIC_LEN_MAX) {
            return false;
        }
        ev->topic[topic_len++] = *p++;
    }
    ev->topic[topic_len] = '\0';
    if (topic_len == 0 || end - p < 2 || p[0] != ' ' || p[1] != 't') {
        return false;
    }
    p += 2;
    if (!parse_u64(&p, end, &ev->term)) {
        return false;
    }
    /* trace.c always writes a space after the term; an empty text may have lost it. */
    if (p < end) {
        if (*p != ' ') {
            return false;
        }
        p++;
    }
    *text_out = p;
    *text_len_out = (size_t)(end - p);
    return true;
}

/* ---- filters ---- */

static bool name_list_has(const struct name_list *l, const char *name)
{
    for (size_t i = 0; i < l->n; i++) {
        if (strcasecmp(l->names[i], name) == 0) {
            return true;
        }
    }
    return false;
}

static bool node_list_has(const struct node_list *l, uint64_t id)
{
    for (size_t i = 0; i < l->n; i++) {
        if (l->ids[i] == id) {
            return true;
        }
    }
    return false;
}

static bool event_wanted(const struct options *o, const struct event *ev)
{
    if (o->have_topics && !name_list_has(&o->topics, ev->topic)) {
        return false;
    }
    if (name_list_has(&o->exclude_topics, ev->topic)) {
        return false;
    }
    if (o->have_nodes && !node_list_has(&o->nodes, ev->node)) {
        return false;
    }
    return true;
}

/* Returns whether node has (or now has) a column; false once COLUMNS_MAX is reached. */
static bool trace_column_add(struct trace *t, uint64_t node)
{
    size_t i = 0;
    while (i < t->n_columns && t->columns[i] < node) {
        i++;
    }
    if (i < t->n_columns && t->columns[i] == node) {
        return true;
    }
    if (t->n_columns == COLUMNS_MAX) {
        return false;
    }
    memmove(&t->columns[i + 1], &t->columns[i], (t->n_columns - i) * sizeof t->columns[0]);
    t->columns[i] = node;
    t->n_columns++;
    return true;
}

static size_t trace_column_of(const struct trace *t, uint64_t node)
{
    for (size_t i = 0; i < t->n_columns; i++) {
        if (t->columns[i] == node) {
            return i;
        }
    }
    CRAFT_UNREACHABLE();
}

/* ---- reading ---- */

static void *xrealloc(void *p, size_t size)
{
    void *q = realloc(p, size);
    if (q == NULL) {
        fprintf(stderr, "craft-log: out of memory\n");
        exit(1);
    }
    return q;
}

static char *copy_bytes(const char *s, size_t len)
{
    char *c = xrealloc(NULL, len + 1);
    memcpy(c, s, len);
    c[len] = '\0';
    return c;
}

static void trace_push(struct trace *t, const struct event *ev)
{
    if (t->n_events == t->cap_events) {
        t->cap_events = t->cap_events ? t->cap_events * 2 : 1024;
        t->events = xrealloc(t->events, t->cap_events * sizeof t->events[0]);
    }
    t->events[t->n_events++] = *ev;
}

static void trace_add_line(struct trace *t, const struct options *o, const char *line, size_t len)
{
    struct event ev = {0};
    const char *text = NULL;
    size_t text_len = 0;
    if (parse_trace_line(line, len, &ev, &text, &text_len)) {
        if (!event_wanted(o, &ev)) {
            return;
        }
        if (trace_column_add(t, ev.node)) {
            /* The cell is at most width bytes: keep no more than that. */
            if (text_len > (size_t)o->width) {
                text_len = (size_t)o->width;
            }
            ev.text = copy_bytes(text, text_len);
            ev.text_len = text_len;
            if (ev.time_ms > t->time_max) {
                t->time_max = ev.time_ms;
            }
            trace_push(t, &ev);
            return;
        }
    }
    struct event raw = {.raw = true, .text = copy_bytes(line, len), .text_len = len};
    trace_push(t, &raw);
}

static int trace_read(struct trace *t, const struct options *o, FILE *in)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, in)) >= 0) {
        size_t len = (size_t)n;
        if (len > 0 && line[len - 1] == '\n') {
            len--;
        }
        trace_add_line(t, o, line, len);
    }
    int err = ferror(in) ? errno : 0;
    free(line);
    return err;
}

static void trace_free(struct trace *t)
{
    for (size_t i = 0; i < t->n_events; i++) {
        free(t->events[i].text);
    }
    free(t->events);
}

/* ---- rendering ---- */

static const struct {
    const char *topic;
    const char *sgr; /* ANSI Select Graphic Rendition parameters */
} topic_colors[] = {
    {"ELECT", "1;31"},    {"VOTE", "35"},  {"APPEND", "36"}, {"COMMIT", "32"},
    {"APPLY", "1;32"},    {"SNAP", "33"},  {"CONF", "1;35"}, {"READ", "1;36"},
    {"PERSIST", "34"},    {"NET", "90"},   {"TIMER", "2"},   {"CLIENT", "1;33"},
    {"FAULT", "1;37;41"}, {"TEST", "1;4"},
};

static const char *topic_sgr(const char *topic)
{
    for (size_t i = 0; i < sizeof topic_colors / sizeof topic_colors[0]; i++) {
        if (strcmp(topic_colors[i].topic, topic) == 0) {
            return topic_colors[i].sgr;
        }
    }
    return NULL; /* an unknown topic is printed in the terminal's default colour */
}

/* Writes s, replacing bytes that could move the cursor or break the column layout
 * (control characters, escape sequences, bytes of multi-byte characters). */
static void put_sanitized(const char *s, size_t len, FILE *out)
{
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\t') {
            c = ' ';
        } else if (c < 0x20 || c >= 0x7f) {
            c = '?';
        }
        putc(c, out);
    }
}

static void put_spaces(size_t n, FILE *out)
{
    for (size_t i = 0; i < n; i++) {
        putc(' ', out);
    }
}

static int count_digits(uint64_t v)
{
    int d = 1;
    while (v >= 10) {
        v /= 10;
        d++;
    }
    return d;
}

static void column_title(uint64_t node, char *buf, size_t cap)
{
    if (node == 0) {
        snprintf(buf, cap, "sim");
    } else {
        snprintf(buf, cap, "n%" PRIu64, node);
    }
}

static void render_header(const struct trace *t, int time_width, size_t width, FILE *out)
{
    fprintf(out, "%*s", time_width, "ms");
    for (size_t c = 0; c < t->n_columns; c++) {
        char title[32];
        column_title(t->columns[c], title, sizeof title);
        fprintf(out, " | %-*.*s", (int)width, (int)width, title);
    }
    putc('\n', out);
    for (int i = 0; i < time_width; i++) {
        putc('-', out);
    }
    for (size_t c = 0; c < t->n_columns; c++) {
        fputs("-+-", out);
        for (size_t i = 0; i < width; i++) {
            putc('-', out);
        }
    }
    putc('\n', out);
}

static void render_event(const struct trace *t, const struct event *ev, int time_width,
                         size_t width, bool color, FILE *out)
{
    size_t col = trace_column_of(t, ev->node);
    fprintf(out, "%*" PRIu64, time_width, ev->time_ms);
    for (size_t c = 0; c < col; c++) {
        fputs(" | ", out);
        put_spaces(width, out);
    }
    fputs(" | ", out);

    /* The cell: "t<term> <TOPIC> <text>", cut at the column width. */
    char head[64];
    int n = snprintf(head, sizeof head, "t%" PRIu64 " %s ", ev->term, ev->topic);
    CRAFT_ASSERT(n > 0 && (size_t)n < sizeof head);
    size_t head_len = (size_t)n < width ? (size_t)n : width;
    size_t text_len = ev->text_len < width - head_len ? ev->text_len : width - head_len;
    const char *sgr = color ? topic_sgr(ev->topic) : NULL;
    if (sgr != NULL) {
        fprintf(out, "\x1b[%sm", sgr);
    }
    fwrite(head, 1, head_len, out);
    put_sanitized(ev->text, text_len, out);
    if (sgr != NULL) {
        fputs("\x1b[0m", out);
    }
    /* No padding after the last cell that has content: the rest of the row is empty. */
    putc('\n', out);
}

static void render(const struct trace *t, const struct options *o, bool color, FILE *out)
{
    int time_width = count_digits(t->time_max);
    if (time_width < 2) {
        time_width = 2;
    }
    size_t width = (size_t)o->width;
    bool header_done = false;
    for (size_t i = 0; i < t->n_events; i++) {
        const struct event *ev = &t->events[i];
        if (ev->raw) {
            fwrite(ev->text, 1, ev->text_len, out);
            putc('\n', out);
            continue;
        }
        /* The header goes right above the first event, after any leading raw lines. */
        if (!header_done) {
            render_header(t, time_width, width, out);
            header_done = true;
        }
        render_event(t, ev, time_width, width, color, out);
    }
}

/* ---- command line ---- */

static void usage(FILE *out)
{
    fputs("usage: craft-log [options] [FILE]\n"
          "\n"
          "Renders a craft trace (FILE, or standard input if absent or \"-\") as one column\n"
          "per node: the simulator (n0) as \"sim\" first, then the nodes in id order.\n"
          "Lines that are not trace lines pass through unchanged.\n"
          "\n"
          "  --width W               column width in characters (default 40, 8..1000)\n"
          "  --topics A,B            show only these topics (e.g. ELECT,VOTE)\n"
          "  --exclude-topics A,B    hide these topics (e.g. NET)\n"
          "  --nodes 1,2             show only these nodes' columns (0 is the simulator)\n"
          "  --color                 colour by topic even when output is not a terminal\n"
          "  --no-color              never colour\n"
          "  -h, --help              print this help\n"
          "\n"
          "Colour is on by default when standard output is a terminal and NO_COLOR is unset.\n"
          "Example: craft-sim run raft/figure8-2c --seed 1 --trace | craft-log --exclude-topics "
          "NET\n",
          out);
}

/* Splits "A,B,C" into names; false (with a message) on an item that is empty, too long,
 * or too many items. Unknown topic names are allowed (a trace may have newer topics) but
 * warned about, since a typo would otherwise silently show nothing. */
static bool parse_name_list(const char *opt, const char *spec, struct name_list *l)
{
    const char *p = spec;
    for (;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == 0 || len > TOPIC_LEN_MAX || l->n == LIST_MAX) {
            fprintf(stderr, "craft-log: %s: bad topic list \"%s\"\n", opt, spec);
            return false;
        }
        memcpy(l->names[l->n], p, len);
        l->names[l->n][len] = '\0';
        if (craft_trace_parse(l->names[l->n]) == 0) {
            fprintf(stderr, "craft-log: %s: warning: unknown topic \"%s\"\n", opt, l->names[l->n]);
        }
        l->n++;
        if (comma == NULL) {
            return true;
        }
        p = comma + 1;
    }
}

static bool parse_node_list(const char *spec, struct node_list *l)
{
    const char *p = spec;
    const char *end = spec + strlen(spec);
    for (;;) {
        uint64_t id;
        if (*p == 'n') {
            p++; /* accept "n1" as written in the trace */
        }
        if (l->n == LIST_MAX || !parse_u64(&p, end, &id) || (*p != ',' && *p != '\0')) {
            fprintf(stderr, "craft-log: --nodes: bad node list \"%s\"\n", spec);
            return false;
        }
        l->ids[l->n++] = id;
        if (*p == '\0') {
            return true;
        }
        p++;
    }
}

enum { OPT_WIDTH = 256, OPT_TOPICS, OPT_EXCLUDE, OPT_NODES, OPT_COLOR, OPT_NO_COLOR };

/* Returns 0 to go on, or the exit status (+1) to stop with: 1 for --help, 3 for errors. */
static int parse_args(int argc, char **argv, struct options *o)
{
    static const struct option longopts[] = {
        {"width", required_argument, NULL, OPT_WIDTH},
        {"topics", required_argument, NULL, OPT_TOPICS},
        {"exclude-topics", required_argument, NULL, OPT_EXCLUDE},
        {"nodes", required_argument, NULL, OPT_NODES},
        {"color", no_argument, NULL, OPT_COLOR},
        {"no-color", no_argument, NULL, OPT_NO_COLOR},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case OPT_WIDTH: {
            char *end = NULL;
            errno = 0;
            long w = strtol(optarg, &end, 10);
            if (errno != 0 || end == optarg || *end != '\0' || w < WIDTH_MIN || w > WIDTH_MAX) {
                fprintf(stderr, "craft-log: --width: expected %d..%d, got \"%s\"\n", WIDTH_MIN,
                        WIDTH_MAX, optarg);
                return 3;
            }
            o->width = (int)w;
            break;
        }
        case OPT_TOPICS:
            o->have_topics = true;
            if (!parse_name_list("--topics", optarg, &o->topics)) {
                return 3;
            }
            break;
        case OPT_EXCLUDE:
            if (!parse_name_list("--exclude-topics", optarg, &o->exclude_topics)) {
                return 3;
            }
            break;
        case OPT_NODES:
            o->have_nodes = true;
            if (!parse_node_list(optarg, &o->nodes)) {
                return 3;
            }
            break;
        case OPT_COLOR:
            o->color = 1;
            break;
        case OPT_NO_COLOR:
            o->color = 0;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return 3;
        }
    }
    if (argc - optind > 1) {
        fprintf(stderr, "craft-log: at most one input file\n");
        return 3;
    }
    if (argc - optind == 1) {
        o->path = argv[optind];
    }
    return 0;
}

static bool color_auto(void)
{
    const char *no_color = getenv("NO_COLOR");
    const char *term = getenv("TERM");
    if (no_color != NULL && no_color[0] != '\0') {
        return false;
    }
    if (term != NULL && strcmp(term, "dumb") == 0) {
        return false;
    }
    return isatty(STDOUT_FILENO) == 1;
}

int main(int argc, char **argv)
{
    struct options o = {.width = WIDTH_DEFAULT, .color = -1};
    int stop = parse_args(argc, argv, &o);
    if (stop != 0) {
        return stop - 1;
    }
    bool color = o.color == -1 ? color_auto() : o.color == 1;

    FILE *in = stdin;
    if (o.path != NULL && strcmp(o.path, "-") != 0) {
        in = fopen(o.path, "rb");
        if (in == NULL) {
            fprintf(stderr, "craft-log: %s: %s\n", o.path, strerror(errno));
            return 1;
        }
    }
    struct trace t = {0};
    int err = trace_read(&t, &o, in);
    if (in != stdin) {
        fclose(in);
    }
    if (err != 0) {
        fprintf(stderr, "craft-log: read error: %s\n", strerror(err));
        trace_free(&t);
        return 1;
    }
    render(&t, &o, color, stdout);
    trace_free(&t);
    if (fflush(stdout) != 0 || ferror(stdout)) {
        /* A reader that went away (less quit early) is not an error worth a message. */
        return errno == EPIPE ? 0 : 1;
    }
    return 0;
}
