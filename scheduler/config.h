/*
 * config.h - the runtime's settings, merged from four places (built-in defaults < INI file <
 * SPOOL_* environment < the C spool_config), and the placement rules they carry. Everything here is
 * read and validated once, at spool_runtime_create; afterwards it is read-only and any thread reads
 * it.
 */
#ifndef SPOOL_CONFIG_H
#define SPOOL_CONFIG_H

#include "spool.h"

#include <stddef.h>
#include <stdint.h>

#define SETTINGS_MAX_THREADS 256
#define SETTINGS_DEFAULT_BATCH 64
#define SETTINGS_MAX_BATCH 65536
#define SETTINGS_DEFAULT_MAX_MESSAGE ((size_t)64 << 20)
#define SETTINGS_DEFAULT_SAMPLE 128
#define SETTINGS_MAX_SAMPLE 65536

typedef enum placement_kind {
    PLACE_NONE = 0,     /* no rule: fall through to the next source */
    PLACE_THREAD,       /* "2": an explicit thread */
    PLACE_ROUND_ROBIN,  /* "round_robin" */
    PLACE_LEAST_LOADED, /* "least_loaded" */
    PLACE_HASH,         /* "hash" */
    PLACE_DEDICATED,    /* "dedicated" or "dedicated:K" */
    PLACE_NEAR,         /* "near:NAME" */
} placement_kind;

typedef struct placement_rule {
    char *pattern; /* actor name, or a glob when is_glob (fnmatch(3) syntax) */
    int is_glob;
    placement_kind kind; /* never PLACE_NONE in a loaded rule */
    int thread;          /* PLACE_THREAD: the thread; PLACE_DEDICATED: the thread reserved for it */
    char *near;          /* PLACE_NEAR: the other actor's name */
    char *source;        /* where it came from: "path:line", "config.placement[i]" */
} placement_rule;

typedef struct runtime_settings {
    int threads;                   /* 1..SETTINGS_MAX_THREADS */
    int *cpus;                     /* cpu_count CPU numbers, or NULL: no pinning */
    int cpu_count;                 /* thread i is pinned to cpus[i % cpu_count] */
    int batch;                     /* 1..SETTINGS_MAX_BATCH */
    char *admin;                   /* "" when none */
    placement_kind default_policy; /* PLACE_ROUND_ROBIN, PLACE_LEAST_LOADED or PLACE_HASH */
    placement_rule *rules;         /* C rules first, then the file's, in order */
    size_t rule_count;
    size_t max_message_size;
    uint64_t seed;
    int metrics;                      /* 1: on (default), 0: off */
    unsigned metrics_sample;          /* histograms observe 1 message in this many */
    const spool_allocator *allocator; /* where the strings and arrays above came from */
} runtime_settings;

/*
 * Loads and validates the settings. `config` may be NULL (defaults + environment). On failure
 * returns SPOOL_ECONFIG (with "source: reason" in err, e.g. "spool.ini:12: thread 7 does not exist
 * (threads = 4)") or SPOOL_ENOMEM, and *out holds nothing to free.
 */
int settings_load(const spool_config *config, const spool_allocator *allocator,
                  runtime_settings *out, char *err, size_t err_size);

/* Frees what settings_load allocated. */
void settings_free(runtime_settings *settings);

/*
 * Parses one placement value ("2", "round_robin", "least_loaded", "hash", "dedicated",
 * "dedicated:K", "near:NAME") into kind/thread/near (near points into `value`, not copied:
 * *near_len gives its length). Does not check the thread against a thread count.
 * Returns 0, or SPOOL_EINVAL with a reason in err.
 */
int placement_parse(const char *value, placement_kind *kind, int *thread, const char **near,
                    size_t *near_len, char *err, size_t err_size);

/*
 * The rule for an actor name: the first rule whose pattern equals the name, else the first glob
 * that matches it, else NULL. NULL name gives NULL.
 */
const placement_rule *settings_match(const runtime_settings *settings, const char *name);

/* Name of a policy kind ("round_robin", ...), for messages and the admin endpoint. */
const char *placement_kind_name(placement_kind kind);

#endif
