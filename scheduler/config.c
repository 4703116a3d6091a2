/*
 * config.c - settings_load: merges built-in defaults, the INI file (libinih), SPOOL_* variables and
 * the C spool_config into runtime_settings, then checks the placement rules as a whole. Each error
 * names where the bad value came from ("spool.ini:12: ...", "SPOOL_THREADS: ...").
 */
#include "scheduler/config.h"

#include "mailbox/memory.h"

#include <errno.h>
#include <fnmatch.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEFAULT_SEED UINT64_C(0x9e3779b97f4a7c15)
#define MAX_CPU_LIST 4096 /* entries a cpus list may expand to */
#define MAX_VALUE 1024    /* bytes of one value in the file, comment stripped */
#define FIRST_RULE_CAPACITY 8

#if defined(__GNUC__)
#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))
#else
#define PRINTF_LIKE(f, a)
#endif

/* The keys of [runtime], plus [placement]'s "default": indexes of loader.key_line. */
enum {
    KEY_THREADS,
    KEY_CPUS,
    KEY_BATCH,
    KEY_ADMIN,
    KEY_MAX_MESSAGE,
    KEY_METRICS,
    KEY_METRICS_SAMPLE,
    KEY_DEFAULT,
    KEY_COUNT
};

static const char *const runtime_keys[] = {"threads",          "cpus",    "batch",         "admin",
                                           "max_message_size", "metrics", "metrics_sample"};

static const struct {
    const char *variable;
    int key;
} environment_keys[] = {
    {"SPOOL_THREADS", KEY_THREADS}, {"SPOOL_CPUS", KEY_CPUS},
    {"SPOOL_BATCH", KEY_BATCH},     {"SPOOL_ADMIN", KEY_ADMIN},
    {"SPOOL_METRICS", KEY_METRICS}, {"SPOOL_METRICS_SAMPLE", KEY_METRICS_SAMPLE},
};

/* Where a value came from: "SPOOL_CPUS", "config.threads", or a path with line > 0. */
typedef struct where {
    const char *source;
    int line;
} where;

/* The state of one settings_load. */
typedef struct loader {
    const spool_allocator *allocator;
    runtime_settings settings; /* being built; rules has rule_capacity slots */
    size_t rule_capacity;
    char *err;
    size_t err_size;
    int status; /* 0, SPOOL_ECONFIG or SPOOL_ENOMEM: the first error wins */
    /* the file being read */
    const char *path;
    FILE *file;
    int line;
    int read_errno;
    size_t first_file_rule;
    int key_line[KEY_COUNT]; /* line where the file set each key, 0 = not yet */
} loader;

/* ---------------------------------------------------------------------------------------------- */
/* Errors and strings                                                                             */
/* ---------------------------------------------------------------------------------------------- */

PRINTF_LIKE(3, 0)
static void write_text_v(char *out, size_t size, const char *format, va_list args) {
    if (out && size)
        vsnprintf(out, size, format, args);
}

PRINTF_LIKE(3, 4)
static void write_text(char *out, size_t size, const char *format, ...) {
    va_list args;
    va_start(args, format);
    write_text_v(out, size, format, args);
    va_end(args);
}

/* Records the first error as "source: reason" (or "path:line: reason"); returns SPOOL_ECONFIG. */
PRINTF_LIKE(3, 4)
static int fail(loader *l, where at, const char *format, ...) {
    if (l->status)
        return l->status;
    l->status = SPOOL_ECONFIG;
    if (!l->err || !l->err_size)
        return l->status;
    int n = at.line > 0 ? snprintf(l->err, l->err_size, "%s:%d: ", at.source, at.line)
                        : snprintf(l->err, l->err_size, "%s: ", at.source);
    if (n >= 0 && (size_t)n < l->err_size) {
        va_list args;
        va_start(args, format);
        write_text_v(l->err + n, l->err_size - (size_t)n, format, args);
        va_end(args);
    }
    return l->status;
}

static int out_of_memory(loader *l) {
    if (!l->status) {
        l->status = SPOOL_ENOMEM;
        write_text(l->err, l->err_size, "out of memory");
    }
    return l->status;
}

/* A NUL-terminated copy of len bytes (which hold no NUL), freed with memory_free_string. */
static char *copy_string(loader *l, const char *s, size_t len) {
    char *copy = memory_alloc(l->allocator, len + 1);
    if (!copy) {
        out_of_memory(l);
        return NULL;
    }
    memcpy(copy, s, len);
    copy[len] = '\0';
    return copy;
}

PRINTF_LIKE(2, 3)
static char *format_string(loader *l, const char *format, ...) {
    va_list args;
    va_start(args, format);
    int len = vsnprintf(NULL, 0, format, args);
    va_end(args);
    if (len < 0) {
        out_of_memory(l);
        return NULL;
    }
    char *s = memory_alloc(l->allocator, (size_t)len + 1);
    if (!s) {
        out_of_memory(l);
        return NULL;
    }
    va_start(args, format);
    vsnprintf(s, (size_t)len + 1, format, args);
    va_end(args);
    return s;
}

/* ---------------------------------------------------------------------------------------------- */
/* Values                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

/* Reads the decimal digits at *p (at least one, value at most max) and moves *p past them. */
static int parse_digits(const char **p, unsigned long long max, unsigned long long *out) {
    const char *s = *p;
    unsigned long long n = 0;
    if (*s < '0' || *s > '9')
        return -1;
    for (; *s >= '0' && *s <= '9'; s++) {
        unsigned digit = (unsigned)(*s - '0');
        if (n > (max - digit) / 10)
            return -1;
        n = n * 10 + digit;
    }
    *p = s;
    *out = n;
    return 0;
}

/* A whole string of digits, at most max. */
static int parse_number(const char *text, unsigned long long max, unsigned long long *out) {
    const char *p = text;
    return parse_digits(&p, max, out) == 0 && *p == '\0' ? 0 : -1;
}

static int is_policy(placement_kind kind) {
    return kind == PLACE_ROUND_ROBIN || kind == PLACE_LEAST_LOADED || kind == PLACE_HASH;
}

int placement_parse(const char *value, placement_kind *kind, int *thread, const char **near,
                    size_t *near_len, char *err, size_t err_size) {
    placement_kind k = PLACE_NONE;
    int t = -1;
    const char *n = NULL;
    unsigned long long number;
    if (err && err_size)
        err[0] = '\0';
    if (!value) {
        write_text(err, err_size, "no placement given");
        return SPOOL_EINVAL;
    }
    if (strcmp(value, "round_robin") == 0) {
        k = PLACE_ROUND_ROBIN;
    } else if (strcmp(value, "least_loaded") == 0) {
        k = PLACE_LEAST_LOADED;
    } else if (strcmp(value, "hash") == 0) {
        k = PLACE_HASH;
    } else if (strcmp(value, "dedicated") == 0) {
        k = PLACE_DEDICATED;
    } else if (strncmp(value, "dedicated:", 10) == 0) {
        if (parse_number(value + 10, INT_MAX, &number)) {
            write_text(err, err_size, "dedicated:K needs a thread number K, not '%s'", value + 10);
            return SPOOL_EINVAL;
        }
        k = PLACE_DEDICATED;
        t = (int)number;
    } else if (strncmp(value, "near:", 5) == 0) {
        if (value[5] == '\0') {
            write_text(err, err_size, "'near:' needs the name of an actor (near:NAME)");
            return SPOOL_EINVAL;
        }
        k = PLACE_NEAR;
        n = value + 5;
    } else if (value[0] >= '0' && value[0] <= '9') {
        if (parse_number(value, INT_MAX, &number)) {
            write_text(err, err_size, "'%s' is not a thread number", value);
            return SPOOL_EINVAL;
        }
        k = PLACE_THREAD;
        t = (int)number;
    } else {
        write_text(err, err_size,
                   "unknown placement '%s' (expected a thread number, round_robin, least_loaded, "
                   "hash, dedicated, dedicated:K or near:NAME)",
                   value);
        return SPOOL_EINVAL;
    }
    if (kind)
        *kind = k;
    if (thread)
        *thread = t;
    if (near)
        *near = n;
    if (near_len)
        *near_len = n ? strlen(n) : 0;
    return 0;
}

const char *placement_kind_name(placement_kind kind) {
    switch (kind) {
    case PLACE_NONE:
        return "none";
    case PLACE_THREAD:
        return "thread";
    case PLACE_ROUND_ROBIN:
        return "round_robin";
    case PLACE_LEAST_LOADED:
        return "least_loaded";
    case PLACE_HASH:
        return "hash";
    case PLACE_DEDICATED:
        return "dedicated";
    case PLACE_NEAR:
        return "near";
    }
    return "unknown";
}

/* CPUs the machine has (online or not); INT_MAX when it cannot tell, so nothing is refused. */
static long machine_cpus(void) {
    long n = sysconf(_SC_NPROCESSORS_CONF);
    return n > 0 ? n : INT_MAX;
}

static const char *skip_blanks(const char *p) {
    while (*p == ' ' || *p == '\t')
        p++;
    return p;
}

/* One item of a CPU list at *p: "N" or "N-M", blanks allowed around; moves *p to the ',' or end. */
static int parse_cpu_item(const char **p, unsigned long long *first, unsigned long long *last) {
    const char *s = skip_blanks(*p);
    if (parse_digits(&s, INT_MAX, first))
        return -1;
    *last = *first;
    s = skip_blanks(s);
    if (*s == '-') {
        s = skip_blanks(s + 1);
        if (parse_digits(&s, INT_MAX, last))
            return -1;
        s = skip_blanks(s);
    }
    if (*s != ',' && *s != '\0')
        return -1;
    *p = s;
    return 0;
}

/*
 * Walks "0-3,6,8-9": checks every item and counts the CPUs it lists; when cpus is non-NULL also
 * stores them there (the caller counted first).
 */
static int walk_cpu_list(loader *l, where at, const char *text, int *cpus, size_t *count) {
    long machine = machine_cpus();
    size_t n = 0;
    const char *p = text;
    for (;;) {
        unsigned long long first, last;
        const char *item = skip_blanks(p);
        if (*item == ',' || *item == '\0')
            return fail(l, at, "cpus '%s': empty item", text);
        if (parse_cpu_item(&p, &first, &last))
            return fail(l, at, "cpus '%s': '%.*s' is not a CPU number or a range like 0-3", text,
                        (int)strcspn(item, ","), item);
        if (last < first)
            return fail(l, at, "cpus '%s': range %llu-%llu is reversed", text, first, last);
        if (last >= (unsigned long long)machine)
            return fail(l, at, "cpu %llu does not exist (this machine has %ld)", last, machine);
        if (last - first + 1 > MAX_CPU_LIST - n)
            return fail(l, at, "cpus '%s': more than %d CPUs listed", text, MAX_CPU_LIST);
        for (unsigned long long cpu = first; cpu <= last; cpu++, n++)
            if (cpus)
                cpus[n] = (int)cpu;
        if (*p == '\0')
            break;
        p++;
    }
    *count = n;
    return 0;
}

/* Replaces the CPU list; an empty or blank text means "no pinning". */
static int set_cpus(loader *l, where at, const char *text) {
    runtime_settings *s = &l->settings;
    size_t count = 0;
    int *cpus = NULL;
    if (*skip_blanks(text) != '\0') {
        if (walk_cpu_list(l, at, text, NULL, &count))
            return l->status;
        cpus = memory_alloc(l->allocator, count * sizeof *cpus);
        if (!cpus)
            return out_of_memory(l);
        walk_cpu_list(l, at, text, cpus, &count);
    }
    memory_free(l->allocator, s->cpus, (size_t)s->cpu_count * sizeof *s->cpus);
    s->cpus = cpus;
    s->cpu_count = (int)count;
    return 0;
}

static int set_admin(loader *l, const char *text) {
    char *admin = copy_string(l, text, strlen(text));
    if (!admin)
        return l->status;
    memory_free_string(l->allocator, l->settings.admin);
    l->settings.admin = admin;
    return 0;
}

static int set_default_policy(loader *l, where at, const char *text) {
    placement_kind kind;
    char reason[256];
    if (placement_parse(text, &kind, NULL, NULL, NULL, reason, sizeof reason))
        return fail(l, at, "default: %s", reason);
    if (!is_policy(kind))
        return fail(l, at, "default must be round_robin, least_loaded or hash, not '%s'", text);
    l->settings.default_policy = kind;
    return 0;
}

/* Sets a [runtime] key (or an environment variable's) from its text. */
static int set_runtime_value(loader *l, where at, int key, const char *text) {
    runtime_settings *s = &l->settings;
    unsigned long long n;
    switch (key) {
    case KEY_THREADS:
        if (parse_number(text, SETTINGS_MAX_THREADS, &n) || n < 1)
            return fail(l, at, "threads must be a number from 1 to %d, not '%s'",
                        SETTINGS_MAX_THREADS, text);
        s->threads = (int)n;
        return 0;
    case KEY_CPUS:
        return set_cpus(l, at, text);
    case KEY_BATCH:
        if (parse_number(text, SETTINGS_MAX_BATCH, &n) || n < 1)
            return fail(l, at, "batch must be a number from 1 to %d, not '%s'", SETTINGS_MAX_BATCH,
                        text);
        s->batch = (int)n;
        return 0;
    case KEY_ADMIN:
        return set_admin(l, text);
    case KEY_MAX_MESSAGE:
        if (parse_number(text, SIZE_MAX, &n) || n < 1)
            return fail(l, at, "max_message_size must be a number of bytes (1 or more), not '%s'",
                        text);
        s->max_message_size = (size_t)n;
        return 0;
    case KEY_METRICS:
        if (strcmp(text, "on") == 0 || strcmp(text, "1") == 0)
            s->metrics = 1;
        else if (strcmp(text, "off") == 0 || strcmp(text, "0") == 0)
            s->metrics = 0;
        else
            return fail(l, at, "metrics must be on or off, not '%s'", text);
        return 0;
    case KEY_METRICS_SAMPLE:
        if (parse_number(text, SETTINGS_MAX_SAMPLE, &n) || n < 1)
            return fail(l, at, "metrics_sample must be a number from 1 to %d, not '%s'",
                        SETTINGS_MAX_SAMPLE, text);
        s->metrics_sample = (unsigned)n;
        return 0;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Rules                                                                                          */
/* ---------------------------------------------------------------------------------------------- */

static void free_rule(const spool_allocator *a, placement_rule *rule) {
    memory_free_string(a, rule->pattern);
    memory_free_string(a, rule->near);
    memory_free_string(a, rule->source);
}

static int grow_rules(loader *l) {
    runtime_settings *s = &l->settings;
    if (s->rule_count < l->rule_capacity)
        return 0;
    size_t capacity = l->rule_capacity ? l->rule_capacity * 2 : FIRST_RULE_CAPACITY;
    if (capacity > SIZE_MAX / sizeof *s->rules)
        return out_of_memory(l);
    placement_rule *rules = memory_alloc(l->allocator, capacity * sizeof *rules);
    if (!rules)
        return out_of_memory(l);
    if (s->rule_count)
        memcpy(rules, s->rules, s->rule_count * sizeof *rules);
    memory_free(l->allocator, s->rules, l->rule_capacity * sizeof *rules);
    s->rules = rules;
    l->rule_capacity = capacity;
    return 0;
}

/* Appends the rule "pattern = value"; its source is `at` ("path:line" for the file). */
static int add_rule(loader *l, where at, const char *pattern, const char *value) {
    placement_kind kind;
    int thread;
    const char *near;
    size_t near_len;
    char reason[256];
    if (!pattern || !*pattern)
        return fail(l, at, "a placement rule needs an actor name or a glob");
    if (!value)
        return fail(l, at, "%s: no placement given", pattern);
    if (placement_parse(value, &kind, &thread, &near, &near_len, reason, sizeof reason))
        return fail(l, at, "%s: %s", pattern, reason);
    int is_glob = strpbrk(pattern, "*?[") != NULL;
    if (kind == PLACE_DEDICATED && is_glob)
        return fail(l, at, "'%s': dedicated needs an actor name, not a glob", pattern);
    if (grow_rules(l))
        return l->status;
    placement_rule rule = {.is_glob = is_glob, .kind = kind, .thread = thread};
    rule.pattern = copy_string(l, pattern, strlen(pattern));
    rule.source = at.line > 0 ? format_string(l, "%s:%d", at.source, at.line)
                              : copy_string(l, at.source, strlen(at.source));
    if (kind == PLACE_NEAR)
        rule.near = copy_string(l, near, near_len);
    if (!rule.pattern || !rule.source || (kind == PLACE_NEAR && !rule.near)) {
        free_rule(l->allocator, &rule);
        return out_of_memory(l);
    }
    l->settings.rules[l->settings.rule_count++] = rule;
    return 0;
}

/* The thread of a dedicated rule that does not name one: the highest free thread, or -1. */
static int free_thread(const placement_rule **targeted, const placement_rule **dedicated,
                       int threads) {
    for (int t = threads - 1; t >= 0; t--)
        if (!targeted[t] && !dedicated[t])
            return t;
    return -1;
}

static int reserve_dedicated(loader *l, placement_rule *rule, const placement_rule **dedicated,
                             int *dedicated_count) {
    int threads = l->settings.threads;
    dedicated[rule->thread] = rule;
    if (++*dedicated_count >= threads)
        return fail(l, (where){rule->source, 0},
                    "dedicated rules would take every thread (threads = %d), leaving none for "
                    "other actors",
                    threads);
    return 0;
}

/* Checks the merged rules against the final thread count and gives plain `dedicated` a thread. */
static int check_rules(loader *l) {
    runtime_settings *s = &l->settings;
    const placement_rule *targeted[SETTINGS_MAX_THREADS] = {0};  /* first thread rule per thread */
    const placement_rule *dedicated[SETTINGS_MAX_THREADS] = {0}; /* dedicated rule per thread */
    int dedicated_count = 0;
    for (size_t i = 0; i < s->rule_count; i++) {
        placement_rule *r = &s->rules[i];
        where at = {r->source, 0};
        int t = r->thread;
        if (r->kind != PLACE_THREAD && !(r->kind == PLACE_DEDICATED && t >= 0))
            continue;
        if (t >= s->threads)
            return fail(l, at, "thread %d does not exist (threads = %d)", t, s->threads);
        if (dedicated[t])
            return fail(l, at, "thread %d is already dedicated to '%s' (%s)", t,
                        dedicated[t]->pattern, dedicated[t]->source);
        if (r->kind == PLACE_THREAD) {
            if (!targeted[t])
                targeted[t] = r;
            continue;
        }
        if (targeted[t])
            return fail(l, at, "thread %d cannot be dedicated to '%s': '%s' is placed there (%s)",
                        t, r->pattern, targeted[t]->pattern, targeted[t]->source);
        if (reserve_dedicated(l, r, dedicated, &dedicated_count))
            return l->status;
    }
    for (size_t i = 0; i < s->rule_count; i++) {
        placement_rule *r = &s->rules[i];
        if (r->kind != PLACE_DEDICATED || r->thread >= 0)
            continue;
        r->thread = free_thread(targeted, dedicated, s->threads);
        if (r->thread < 0)
            return fail(l, (where){r->source, 0},
                        "no thread left for dedicated '%s' (threads = %d, each is taken by a "
                        "thread rule or another dedicated actor)",
                        r->pattern, s->threads);
        if (reserve_dedicated(l, r, dedicated, &dedicated_count))
            return l->status;
    }
    for (size_t i = 0; i < s->rule_count; i++) {
        const placement_rule *r = &s->rules[i];
        if (r->kind != PLACE_NEAR)
            continue;
        if (!r->is_glob && strcmp(r->near, r->pattern) == 0)
            return fail(l, (where){r->source, 0}, "'%s' cannot be placed near itself", r->pattern);
        for (int t = 0; t < s->threads; t++)
            if (dedicated[t] && strcmp(dedicated[t]->pattern, r->near) == 0)
                return fail(l, (where){r->source, 0},
                            "'%s' cannot be placed near '%s': it has a dedicated thread (%s)",
                            r->pattern, r->near, dedicated[t]->source);
    }
    return 0;
}

/* Shrinks the rule array to rule_count slots, the size settings_free will give back. */
static int trim_rules(loader *l) {
    runtime_settings *s = &l->settings;
    if (l->rule_capacity == s->rule_count)
        return 0;
    placement_rule *rules = NULL;
    if (s->rule_count) {
        rules = memory_alloc(l->allocator, s->rule_count * sizeof *rules);
        if (!rules)
            return out_of_memory(l);
        memcpy(rules, s->rules, s->rule_count * sizeof *rules);
    }
    memory_free(l->allocator, s->rules, l->rule_capacity * sizeof *rules);
    s->rules = rules;
    l->rule_capacity = s->rule_count;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The INI file                                                                                   */
/* ---------------------------------------------------------------------------------------------- */

static int is_section(const char *name, size_t len, const char *wanted) {
    return len == strlen(wanted) && memcmp(name, wanted, len) == 0;
}

/* Refuses what libinih would take silently or report without a reason. */
static int check_line(loader *l, where at, const char *line) {
    if (*line == '[') {
        const char *end = strchr(line, ']');
        if (!end)
            return fail(l, at, "section header without ']'");
        size_t len = (size_t)(end - line - 1);
        if (!is_section(line + 1, len, "runtime") && !is_section(line + 1, len, "placement") &&
            !is_section(line + 1, len, "node"))
            return fail(l, at, "unknown section [%.*s] (expected [runtime], [placement] or [node])",
                        (int)len, line + 1);
        return 0;
    }
    if (*line == ';' || *line == '#' || *line == '\n' || *line == '\0')
        return 0;
    if (!strpbrk(line, "=:"))
        return fail(l, at, "expected 'key = value', '[section]' or a comment");
    return 0;
}

/*
 * libinih's reader: one line per call, so l->line is the line the handler sees. Leading blanks are
 * removed, so an indented line is never a libinih continuation line. Stops at the first error.
 */
static char *read_line(char *str, int num, void *stream) {
    loader *l = stream;
    if (l->status)
        return NULL;
    if (!fgets(str, num, l->file)) {
        if (ferror(l->file))
            l->read_errno = errno;
        return NULL;
    }
    l->line++;
    where at = {l->path, l->line};
    size_t len = strlen(str);
    if (len && str[len - 1] != '\n') {
        int next = getc(l->file);
        if (next != EOF) {
            fail(l, at, "line too long (the limit is %d characters)", num - 3);
            return NULL;
        }
    }
    size_t skip = l->line == 1 && strncmp(str, "\xEF\xBB\xBF", 3) == 0 ? 3 : 0;
    skip += strspn(str + skip, " \t\v\f\r");
    memmove(str, str + skip, len - skip + 1);
    return check_line(l, at, str) ? NULL : str;
}

/* Copies value without an inline "; comment" and the blanks before it. */
static int strip_comment(const char *value, char *out, size_t size) {
    size_t len = 0;
    for (; value[len]; len++)
        if (value[len] == ';' && len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
            break;
    while (len > 0 && (value[len - 1] == ' ' || value[len - 1] == '\t'))
        len--;
    if (len >= size)
        return -1;
    memcpy(out, value, len);
    out[len] = '\0';
    return 0;
}

static int set_runtime_key(loader *l, where at, const char *name, const char *value) {
    int key = 0;
    while (key < KEY_DEFAULT && strcmp(runtime_keys[key], name) != 0)
        key++;
    if (key == KEY_DEFAULT)
        return fail(l, at,
                    "unknown key '%s' in [runtime] (expected threads, cpus, batch, admin or "
                    "max_message_size)",
                    name);
    if (l->key_line[key])
        return fail(l, at, "%s is already set on line %d", name, l->key_line[key]);
    l->key_line[key] = at.line;
    return set_runtime_value(l, at, key, value);
}

static int set_placement_key(loader *l, where at, const char *name, const char *value) {
    const runtime_settings *s = &l->settings;
    if (strcmp(name, "default") == 0) {
        if (l->key_line[KEY_DEFAULT])
            return fail(l, at, "default is already set on line %d", l->key_line[KEY_DEFAULT]);
        l->key_line[KEY_DEFAULT] = at.line;
        return set_default_policy(l, at, value);
    }
    for (size_t i = l->first_file_rule; i < s->rule_count; i++)
        if (strcmp(s->rules[i].pattern, name) == 0)
            return fail(l, at, "'%s' already has a rule (%s)", name, s->rules[i].source);
    return add_rule(l, at, name, value);
}

/* libinih's handler: one "name = value" of `section`. Returns 0 (stop) after an error. */
static int handle_key(void *user, const char *section, const char *name, const char *value) {
    loader *l = user;
    where at = {l->path, l->line};
    char text[MAX_VALUE];
    if (l->status)
        return 0;
    if (!value)
        fail(l, at, "'%s' has no value", name);
    else if (strip_comment(value, text, sizeof text))
        fail(l, at, "value too long (the limit is %d characters)", MAX_VALUE - 1);
    else if (!*name)
        fail(l, at, "a key is missing before '='");
    else if (strcmp(section, "runtime") == 0)
        set_runtime_key(l, at, name, text);
    else if (strcmp(section, "placement") == 0)
        set_placement_key(l, at, name, text);
    else if (strcmp(section, "node") == 0)
        ; /* the node layer's: spool_node_config_load reads and checks it */
    else if (!*section)
        fail(l, at, "'%s' is outside a section ([runtime] or [placement])", name);
    else
        fail(l, at, "unknown section [%s] (expected [runtime], [placement] or [node])", section);
    return l->status == 0;
}

static int load_file(loader *l, const char *path) {
    if (!path || !*path)
        return 0;
    l->path = path;
    l->first_file_rule = l->settings.rule_count;
    l->file = fopen(path, "r");
    if (!l->file)
        return fail(l, (where){path, 0}, "cannot open: %s", strerror(errno));
    int rc = ini_parse_stream(read_line, l, handle_key, l);
    if (!l->status && l->read_errno)
        fail(l, (where){path, 0}, "cannot read: %s", strerror(l->read_errno));
    else if (!l->status && rc > 0)
        fail(l, (where){path, rc},
             "syntax error (expected 'key = value', '[section]' or a comment)");
    else if (!l->status && rc < 0)
        out_of_memory(l);
    fclose(l->file);
    l->file = NULL;
    return l->status;
}

/* ---------------------------------------------------------------------------------------------- */
/* The other sources                                                                              */
/* ---------------------------------------------------------------------------------------------- */

static int load_defaults(loader *l) {
    runtime_settings *s = &l->settings;
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    s->threads = online < 1                      ? 1
                 : online > SETTINGS_MAX_THREADS ? SETTINGS_MAX_THREADS
                                                 : (int)online;
    s->batch = SETTINGS_DEFAULT_BATCH;
    s->default_policy = PLACE_ROUND_ROBIN;
    s->max_message_size = SETTINGS_DEFAULT_MAX_MESSAGE;
    s->seed = DEFAULT_SEED;
    s->metrics = 1;
    s->metrics_sample = SETTINGS_DEFAULT_SAMPLE;
    return set_admin(l, "");
}

static int load_config_rules(loader *l, const spool_config *config) {
    if (!config || !config->placement_count)
        return 0;
    if (!config->placement)
        return fail(l, (where){"config.placement", 0}, "NULL with placement_count = %zu",
                    config->placement_count);
    for (size_t i = 0; i < config->placement_count; i++) {
        char source[64];
        snprintf(source, sizeof source, "config.placement[%zu]", i);
        const spool_placement_rule *rule = &config->placement[i];
        if (add_rule(l, (where){source, 0}, rule->pattern, rule->value))
            return l->status;
    }
    return 0;
}

static const char *config_path(const spool_config *config) {
    if (config && config->config_file)
        return config->config_file;
    if (config && config->ignore_environment)
        return NULL;
    return getenv("SPOOL_CONFIG");
}

/* SPOOL_THREADS, SPOOL_CPUS, SPOOL_BATCH, SPOOL_ADMIN, SPOOL_METRICS, SPOOL_METRICS_SAMPLE; an
 * empty variable counts as unset. */
static int load_environment(loader *l, const spool_config *config) {
    if (config && config->ignore_environment)
        return 0;
    for (size_t i = 0; i < sizeof environment_keys / sizeof environment_keys[0]; i++) {
        const char *text = getenv(environment_keys[i].variable);
        if (text && *text &&
            set_runtime_value(l, (where){environment_keys[i].variable, 0}, environment_keys[i].key,
                              text))
            return l->status;
    }
    return 0;
}

/* The fields of spool_config that are set (non-zero, non-NULL). */
static int load_config_fields(loader *l, const spool_config *c) {
    runtime_settings *s = &l->settings;
    if (!c)
        return 0;
    if (c->threads) {
        if (c->threads < 1 || c->threads > SETTINGS_MAX_THREADS)
            return fail(l, (where){"config.threads", 0}, "threads must be from 1 to %d, not %d",
                        SETTINGS_MAX_THREADS, c->threads);
        s->threads = c->threads;
    }
    if (c->cpus && set_cpus(l, (where){"config.cpus", 0}, c->cpus))
        return l->status;
    if (c->batch) {
        if (c->batch < 1 || c->batch > SETTINGS_MAX_BATCH)
            return fail(l, (where){"config.batch", 0}, "batch must be from 1 to %d, not %d",
                        SETTINGS_MAX_BATCH, c->batch);
        s->batch = c->batch;
    }
    if (c->admin && set_admin(l, c->admin))
        return l->status;
    if (c->placement_default &&
        set_default_policy(l, (where){"config.placement_default", 0}, c->placement_default))
        return l->status;
    if (c->max_message_size)
        s->max_message_size = c->max_message_size;
    if (c->seed)
        s->seed = c->seed;
    if (c->metrics)
        s->metrics = c->metrics > 0;
    if (c->metrics_sample) {
        if (c->metrics_sample > SETTINGS_MAX_SAMPLE)
            return fail(l, (where){"config.metrics_sample", 0},
                        "metrics_sample must be from 1 to %d, not %u", SETTINGS_MAX_SAMPLE,
                        c->metrics_sample);
        s->metrics_sample = c->metrics_sample;
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The interface                                                                                  */
/* ---------------------------------------------------------------------------------------------- */

/* Frees settings whose rule array has rule_capacity slots, and zeroes them. */
static void free_settings(runtime_settings *s, size_t rule_capacity) {
    const spool_allocator *a = s->allocator;
    for (size_t i = 0; i < s->rule_count; i++)
        free_rule(a, &s->rules[i]);
    memory_free(a, s->rules, rule_capacity * sizeof *s->rules);
    memory_free(a, s->cpus, (size_t)s->cpu_count * sizeof *s->cpus);
    memory_free_string(a, s->admin);
    memset(s, 0, sizeof *s);
}

int settings_load(const spool_config *config, const spool_allocator *allocator,
                  runtime_settings *out, char *err, size_t err_size) {
    if (err && err_size)
        err[0] = '\0';
    if (!out) {
        write_text(err, err_size, "settings_load: out is NULL");
        return SPOOL_EINVAL;
    }
    memset(out, 0, sizeof *out);
    loader l = {.err = err, .err_size = err_size};
    l.allocator = allocator                     ? allocator
                  : config && config->allocator ? config->allocator
                                                : &memory_default_allocator;
    l.settings.allocator = l.allocator;
    if (load_defaults(&l) || load_config_rules(&l, config) || load_file(&l, config_path(config)) ||
        load_environment(&l, config) || load_config_fields(&l, config) || check_rules(&l) ||
        trim_rules(&l)) {
        free_settings(&l.settings, l.rule_capacity);
        return l.status;
    }
    *out = l.settings;
    return 0;
}

void settings_free(runtime_settings *settings) {
    if (settings && settings->allocator)
        free_settings(settings, settings->rule_count);
}

const placement_rule *settings_match(const runtime_settings *settings, const char *name) {
    if (!settings || !name)
        return NULL;
    for (size_t i = 0; i < settings->rule_count; i++)
        if (!settings->rules[i].is_glob && strcmp(settings->rules[i].pattern, name) == 0)
            return &settings->rules[i];
    for (size_t i = 0; i < settings->rule_count; i++)
        if (settings->rules[i].is_glob && fnmatch(settings->rules[i].pattern, name, 0) == 0)
            return &settings->rules[i];
    return NULL;
}
