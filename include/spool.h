/*
 * spool.h - the public C API of spool, an actor runtime.
 *
 * A runtime owns N scheduler threads. Every actor lives on exactly one of them (its home thread)
 * and only that thread ever runs its handler, one message at a time. Any thread may send to any
 * actor: the message is pushed onto the actor's lock-free mailbox and the actor is scheduled on its
 * home thread when the mailbox goes from empty to non-empty. See docs/architecture.md.
 *
 * Conventions: functions return 0 or a negative SPOOL_E* code (spool_strerror() gives the words);
 * results come back through out-parameters placed last; nothing aborts on user error. Each
 * declaration says which thread may call it and who owns what.
 */
#ifndef SPOOL_H
#define SPOOL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(SPOOL_BUILDING) && defined(__GNUC__)
#define SPOOL_API __attribute__((visibility("default")))
#else
#define SPOOL_API
#endif

#define SPOOL_VERSION_MAJOR 0
#define SPOOL_VERSION_MINOR 1
#define SPOOL_VERSION_PATCH 0

/* ---------------------------------------------------------------------------------------------- */
/* Errors                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

/* One table for every error: the enum and spool_strerror() are generated from it. */
#define SPOOL_ERROR_MAP(X)                                                                         \
    X(EINVAL, -1, "invalid argument")                                                              \
    X(ENOMEM, -2, "out of memory")                                                                 \
    X(ENOENT, -3, "no such actor or name")                                                         \
    X(EFULL, -4, "mailbox full")                                                                   \
    X(ESTOPPED, -5, "runtime stopped")                                                             \
    X(ETIMEDOUT, -6, "timed out")                                                                  \
    X(EEXIST, -7, "name already registered")                                                       \
    X(EBUSY, -8, "no thread free for a dedicated actor")                                           \
    X(ECONFIG, -9, "invalid configuration")                                                        \
    X(EDEADLK, -10, "blocking call from a scheduler thread would deadlock")                        \
    X(EMSGSIZE, -11, "message too large")                                                          \
    X(ESTATE, -12, "not allowed in the current state")                                             \
    X(ESYSTEM, -13, "operating system error")                                                      \
    X(EOVERLOAD, -14, "node send queue full")

typedef enum spool_error {
    SPOOL_OK = 0,
#define SPOOL_ERROR_ENUM(name, value, text) SPOOL_##name = value,
    SPOOL_ERROR_MAP(SPOOL_ERROR_ENUM)
#undef SPOOL_ERROR_ENUM
} spool_error;

/* The words for an error code (any thread). Unknown codes give "unknown error". Never NULL. */
SPOOL_API const char *spool_strerror(int error);

/* ---------------------------------------------------------------------------------------------- */
/* Handles and values                                                                             */
/* ---------------------------------------------------------------------------------------------- */

typedef struct spool_runtime spool_runtime; /* opaque: one runtime */
typedef struct spool_ctx spool_ctx; /* opaque: the running actor, valid inside its handler */
typedef struct spool_response spool_response; /* opaque: the answer to a blocking spool_call_wait */

/*
 * An actor id: 64 bits = node (16) | generation (24) | slot (24). 0 is "no actor". A slot is reused
 * after its actor dies with the next generation, so an old id never reaches a new actor: a send to
 * it is a dead letter (SPOOL_ENOENT), not a crash. Ids are plain values: copy them, send them.
 */
typedef uint64_t spool_id;
#define SPOOL_ID_NONE ((spool_id)0)

/* Message types at or above this value are reserved for the runtime's own notices. */
#define SPOOL_MSG_RESERVED 0xFFFF0000u
#define SPOOL_MSG_DOWN 0xFFFF0001u     /* a monitored actor ended: data is a spool_down */
#define SPOOL_MSG_NODEUP 0xFFFF0002u   /* spool_node_monitor: data is a spool_node_event */
#define SPOOL_MSG_NODEDOWN 0xFFFF0003u /* spool_node_monitor: data is a spool_node_event */

/*
 * A message as the handler sees it (read-only; valid until the handler returns, so copy what you
 * keep). `from` is the sending actor, or SPOOL_ID_NONE when sent from outside the runtime.
 * `request_id` is non-zero when the sender waits for a spool_reply().
 */
typedef struct spool_message {
    spool_id from;
    uint32_t type;
    uint32_t reserved;
    const void *data;
    size_t size;
    uint64_t request_id;
} spool_message;

/* Exit reasons. User code may use any positive value of its own. */
#define SPOOL_EXIT_NORMAL 0      /* stopped by itself or by spool_actor_stop(..., 0) */
#define SPOOL_EXIT_NOPROC (-1)   /* monitor: the actor did not exist (anymore) */
#define SPOOL_EXIT_SHUTDOWN (-2) /* the runtime stopped while the actor was alive */
/* monitor of an actor on another node: the connection to that node was lost (the actor may live) */
#define SPOOL_EXIT_NOCONNECTION (-3)

/* The data of a SPOOL_MSG_DOWN message. */
typedef struct spool_down {
    spool_id actor; /* the actor that ended */
    int reason;     /* its exit reason */
} spool_down;

/* Why a message was not handled. Each has a counter (spool_dead_letter_count). */
typedef enum spool_dead_reason {
    SPOOL_DEAD_NO_RECEIVER = 0,  /* stale id, or the actor ended before the message was sent */
    SPOOL_DEAD_MAILBOX_FULL,     /* bounded mailbox, SPOOL_OVERFLOW_REJECT */
    SPOOL_DEAD_DROPPED_OLDEST,   /* bounded mailbox, SPOOL_OVERFLOW_DROP_OLDEST */
    SPOOL_DEAD_RECEIVER_STOPPED, /* queued when the receiver ended */
    SPOOL_DEAD_SHUTDOWN,         /* the runtime stopped before it ran (or refused a send) */
    SPOOL_DEAD_LATE_REPLY,       /* a reply after its call timed out or its caller ended */
    SPOOL_DEAD_UNKNOWN_NODE,     /* the id names a node this process never met (or no node layer) */
    SPOOL_DEAD_NODE_DOWN,        /* the node is not connected (or went down before it was sent) */
    SPOOL_DEAD_OVERLOAD,         /* the node's send queue was full (the send said EOVERLOAD) */
    SPOOL_DEAD_TOO_LARGE,        /* over the node's max_message (the send said EMSGSIZE) */
    SPOOL_DEAD_STALE_INCARNATION, /* the id is of an earlier life of a node that restarted since */
    SPOOL_DEAD_REASON_COUNT
} spool_dead_reason;

/* A short name for a reason ("no_receiver", "mailbox_full", ...); "unknown" if out of range. */
SPOOL_API const char *spool_dead_reason_name(spool_dead_reason reason);

/*
 * For layers that keep messages aside after their handler returned (the Lua layer holds messages
 * while an actor waits): a message that will now never be handled is counted as a dead letter of
 * `reason` and given to the hook, like the runtime's own. The caller still owns the message. Any
 * thread. Errors: SPOOL_EINVAL.
 */
SPOOL_API int spool_dead_letter_report(spool_runtime *rt, spool_dead_reason reason, spool_id to,
                                       const spool_message *message);

/*
 * Called for every dead letter, on the thread where it happened, before the payload is freed.
 * `to` is the intended receiver. Must not block; may send.
 */
typedef void (*spool_dead_letter_fn)(void *user, spool_dead_reason reason, spool_id to,
                                     const spool_message *message);

/* ---------------------------------------------------------------------------------------------- */
/* Runtime                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

/*
 * Where memory comes from. `free` receives the size that was asked for. NULL fields are not allowed
 * in a given allocator; pass no allocator for malloc/free.
 */
typedef struct spool_allocator {
    void *(*alloc)(void *user, size_t size);
    void (*free)(void *user, void *ptr, size_t size);
    void *user;
} spool_allocator;

/* One placement rule from C, the same as a line of the [placement] section (see docs/placement.md).
 */
typedef struct spool_placement_rule {
    const char *pattern; /* actor name or glob ("worker*") */
    const char *value;   /* "2", "round_robin", "least_loaded", "hash", "dedicated",
                            "dedicated:K", "near:NAME" */
} spool_placement_rule;

/*
 * Runtime configuration. Initialise with spool_config_init(), then set what you need. Settings come
 * from up to four places; later ones win: built-in default < config file < environment < fields
 * set here. The environment covers threads, cpus, batch, config file and admin (SPOOL_THREADS,
 * SPOOL_CPUS, SPOOL_BATCH, SPOOL_CONFIG, SPOOL_ADMIN); placement rules come from the file and from
 * `placement` here. See docs/placement.md.
 */
typedef struct spool_config {
    int threads;             /* scheduler threads; 0 = not set (default: number of CPUs) */
    const char *cpus;        /* "0-3,6": thread i pinned to the i-th CPU listed; NULL = not set */
    int batch;               /* messages per actor per turn; 0 = not set (default 64) */
    const char *config_file; /* INI file ([runtime], [placement]); NULL = SPOOL_CONFIG or none */
    const char *admin;       /* admin endpoint (used by the admin tools); NULL = not set */
    const char *placement_default;         /* default policy; NULL = not set (round_robin) */
    const spool_placement_rule *placement; /* extra rules, checked before the file's */
    size_t placement_count;
    size_t max_message_size;             /* bytes; 0 = default (64 MiB) */
    uint64_t seed;                       /* seed of the runtime's generator; 0 = fixed default */
    const spool_allocator *allocator;    /* NULL = malloc/free; copied at create */
    spool_dead_letter_fn on_dead_letter; /* optional hook */
    void *dead_letter_user;
    char *error; /* optional: create writes "source: reason" here on failure, where source is
                    "path:line", an environment variable or a config field */
    size_t error_size;
    int ignore_environment;  /* non-zero: do not read SPOOL_* variables (tests) */
    int metrics;             /* 0 = not set (on), 1 = on, -1 = off; file: metrics = on|off,
                                environment: SPOOL_METRICS=on|off */
    unsigned metrics_sample; /* histograms observe 1 message in N (1..65536); 0 = not set (128);
                                file: metrics_sample, environment: SPOOL_METRICS_SAMPLE */
} spool_config;

/* Fills `config` with "not set" everywhere. Any thread. */
SPOOL_API void spool_config_init(spool_config *config);

/*
 * Creates a runtime: reads the configuration, validates placement (a rule naming a thread that does
 * not exist, an unknown policy, two dedicated actors for one thread are refused with SPOOL_ECONFIG
 * and "file:line: reason" in config->error), allocates the threads' state. No thread runs until
 * spool_runtime_start(). `config` may be NULL for all defaults. Any thread not in a runtime.
 * Errors: SPOOL_EINVAL, SPOOL_ECONFIG, SPOOL_ENOMEM.
 */
SPOOL_API int spool_runtime_create(const spool_config *config, spool_runtime **out);

/*
 * Starts the scheduler threads (named "spool/N", pinned when cpus is set). Actors spawned and
 * messages sent before start wait for it. Errors: SPOOL_EINVAL, SPOOL_ESTATE (already started or
 * stopped), SPOOL_ESYSTEM (a thread could not be created or pinned: nothing is left running).
 */
SPOOL_API int spool_runtime_start(spool_runtime *rt);

/*
 * Graceful stop. Sends from outside the runtime are refused from now on (SPOOL_ESTOPPED, counted as
 * SPOOL_DEAD_SHUTDOWN); actors keep running until every mailbox is empty or `deadline_ms` has
 * passed (0: stop after the current turns). Then the threads end, every message still queued and
 * every timer not yet fired is counted as a SPOOL_DEAD_SHUTDOWN dead letter, and every actor's
 * state destructor runs. Call from outside the runtime (SPOOL_EDEADLK from a scheduler thread).
 * Idempotent.
 */
SPOOL_API int spool_runtime_stop(spool_runtime *rt, unsigned deadline_ms);

/*
 * Stops (with deadline 0) if still running, frees everything and sets *rt to NULL. NULL-safe.
 * Call from outside the runtime.
 */
SPOOL_API void spool_runtime_destroy(spool_runtime **rt);

/*
 * Blocks until no actor is alive, or `timeout_ms` passed (SPOOL_ETIMEDOUT); UINT32_MAX waits
 * forever. Call from outside the runtime (SPOOL_EDEADLK from a scheduler thread).
 */
SPOOL_API int spool_runtime_wait(spool_runtime *rt, unsigned timeout_ms);

/* Number of scheduler threads (any thread). 0 if rt is NULL. */
SPOOL_API int spool_runtime_threads(const spool_runtime *rt);

/* The admin endpoint in force ("" if none). Any thread. */
SPOOL_API const char *spool_runtime_admin(const spool_runtime *rt);

/* One placement rule in force, as loaded (strings owned by the runtime, valid until destroy). */
typedef struct spool_placement_info {
    const char *pattern; /* actor name or glob */
    const char *policy;  /* "thread", "round_robin", "least_loaded", "hash", "dedicated", "near" */
    int thread;          /* for "thread" and "dedicated": the thread; else -1 */
    const char *near;    /* for "near": the other actor's name; else NULL */
    const char *source;  /* where it came from: "path:line" or "config.placement[i]" */
} spool_placement_info;

/* The default placement policy in force ("round_robin", "least_loaded" or "hash"). Any thread. */
SPOOL_API const char *spool_runtime_default_policy(const spool_runtime *rt);

/* Batch size in force (messages per actor per turn). Any thread. 0 if rt is NULL. */
SPOOL_API int spool_runtime_batch(const spool_runtime *rt);

/*
 * Copies up to `max` of the placement rules in force into `out` (in matching order) and returns how
 * many rules there are in all. Any thread. 0 if rt is NULL.
 */
SPOOL_API size_t spool_runtime_placement(const spool_runtime *rt, spool_placement_info *out,
                                         size_t max);

/*
 * Dead letters counted so far for `reason` (any thread). Errors: SPOOL_EINVAL.
 */
SPOOL_API int spool_dead_letter_count(const spool_runtime *rt, spool_dead_reason reason,
                                      uint64_t *out);

/* ---------------------------------------------------------------------------------------------- */
/* Actors                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

/*
 * Runs one message on the actor's home thread. `state` is the pointer given at spawn. The message
 * and its data are valid until the handler returns.
 */
typedef void (*spool_handler_fn)(spool_ctx *ctx, void *state, const spool_message *message);

/*
 * What an actor does. The behavior must outlive every actor spawned with it (usually static).
 * `destroy` (optional) frees the state when the actor ends, on its home thread (or on the thread
 * that stops the runtime).
 */
typedef struct spool_behavior {
    const char *name; /* a label for metrics and logs, e.g. "counter" */
    spool_handler_fn handle;
    void (*destroy)(void *state);
} spool_behavior;

/* What to do when a bounded mailbox is full. */
typedef enum spool_overflow {
    SPOOL_OVERFLOW_REJECT = 0,  /* the send fails with SPOOL_EFULL, counted as mailbox_full */
    SPOOL_OVERFLOW_DROP_OLDEST, /* the send succeeds; the oldest message is dropped and counted */
} spool_overflow;

#define SPOOL_THREAD_ANY (-1)

/* Spawn options. Start from spool_spawn_opts_default(): a zeroed struct means "thread 0". */
typedef struct spool_spawn_opts {
    const char *name;        /* registered name (must be free), also matched by placement rules */
    int thread;              /* explicit home thread, or SPOOL_THREAD_ANY */
    const char *placement;   /* "round_robin", "least_loaded", "hash", "dedicated", "dedicated:K",
                                "near:NAME" or a thread number; NULL = the config's rule for the
                                name, or its default */
    spool_id near;           /* place on the same thread as this actor (if non-zero) */
    size_t mailbox_capacity; /* 0 = unbounded */
    spool_overflow overflow; /* policy when bounded */
    int pinned;              /* non-zero: never moves (spool_actor_move says SPOOL_ESTATE); for
                                state that belongs to its thread, such as a Lua actor's coroutine */
} spool_spawn_opts;

/* Options with every field "not set" (thread = SPOOL_THREAD_ANY). */
SPOOL_API spool_spawn_opts spool_spawn_opts_default(void);

/*
 * Spawns an actor. On success the actor owns `state` (freed through behavior->destroy) and *out is
 * its id. On failure nothing is taken and *out is untouched. Placement, in order of precedence:
 * opts->thread, opts->near, a config rule matching opts->name, opts->placement, the config default.
 * Any thread (inside a handler too). `opts` may be NULL.
 * Errors: SPOOL_EINVAL (NULL behavior or handler, thread out of range, unknown policy, "hash"
 * without a name), SPOOL_EEXIST (name taken), SPOOL_ENOENT (near actor not found), SPOOL_EBUSY (the
 * thread chosen - explicitly, near another actor, or by policy - is dedicated to another actor, or
 * "dedicated" would leave no thread for anyone else), SPOOL_ESTOPPED, SPOOL_ENOMEM.
 */
SPOOL_API int spool_spawn(spool_runtime *rt, const spool_behavior *behavior, void *state,
                          const spool_spawn_opts *opts, spool_id *out);

/*
 * Sends a copy of `size` bytes at `data` (the caller keeps its buffer). Any thread. Inside a
 * handler the message's `from` is the running actor. Messages from one sender to one receiver
 * arrive in the order sent. Errors (each also counted as a dead letter): SPOOL_ENOENT (no such
 * actor), SPOOL_EFULL (bounded mailbox full, reject policy), SPOOL_ESTOPPED (runtime stopping, sent
 * from outside). Plain argument errors (SPOOL_EINVAL: NULL rt, data NULL with size > 0, type
 * reserved; SPOOL_EMSGSIZE; SPOOL_ENOMEM) are not dead letters: nothing was accepted.
 */
SPOOL_API int spool_send(spool_runtime *rt, spool_id to, uint32_t type, const void *data,
                         size_t size);

/*
 * Zero-copy send: hands `data` over. From this call on the runtime owns it and calls
 * free_fn(data) exactly once (after the handler, or when the message becomes a dead letter), on
 * whatever thread that happens; on SPOOL_EINVAL with a NULL rt it is freed at once. free_fn may be
 * NULL for static data. Same errors as spool_send.
 */
SPOOL_API int spool_send_owned(spool_runtime *rt, spool_id to, uint32_t type, void *data,
                               size_t size, void (*free_fn)(void *data));

/*
 * Inside a handler: the running actor's id / runtime / home thread. NULL ctx gives 0 / NULL / -1.
 */
SPOOL_API spool_id spool_self(const spool_ctx *ctx);
SPOOL_API spool_runtime *spool_ctx_runtime(const spool_ctx *ctx);
SPOOL_API int spool_ctx_thread(const spool_ctx *ctx);

/*
 * Stops an actor with `reason`. From the actor itself (inside its handler): it ends when the
 * handler returns. From anywhere else: a stop request is queued behind the messages already sent,
 * which are handled first. Either way the messages left in its mailbox become
 * SPOOL_DEAD_RECEIVER_STOPPED dead letters, its monitors get SPOOL_MSG_DOWN, its name is released
 * and its state destroyed. Any thread. Errors: SPOOL_ENOENT, SPOOL_ESTOPPED, SPOOL_EINVAL.
 */
SPOOL_API int spool_actor_stop(spool_runtime *rt, spool_id id, int reason);

/*
 * Inside a handler: the running actor monitors `target`. When target ends, the running actor gets a
 * SPOOL_MSG_DOWN message (data: spool_down) with the reason; if target does not exist, the notice
 * comes at once with SPOOL_EXIT_NOPROC. Errors: SPOOL_EINVAL (NULL ctx or not in a handler).
 */
SPOOL_API int spool_monitor(spool_ctx *ctx, spool_id target);

/*
 * Inside a handler: queues a message of `type` (data copied) for the running actor itself, behind
 * every message already in its mailbox. It travels as a runtime notice: a bounded mailbox neither
 * refuses it nor drops a message for it, and it is not counted among the user messages. For an
 * actor that wants to go on once what is queued now has been handled (a poll of its mailbox, a
 * cooperative yield). Errors: SPOOL_EINVAL (not in a handler, a reserved type, data NULL with
 * size > 0), SPOOL_EMSGSIZE, SPOOL_ENOMEM.
 */
SPOOL_API int spool_send_self(spool_ctx *ctx, uint32_t type, const void *data, size_t size);

/*
 * Names. A name belongs to one live actor; it is released when the actor ends. Any thread.
 * register: SPOOL_EEXIST (taken), SPOOL_ENOENT (no such actor), SPOOL_EINVAL (empty name, > 255
 * bytes). whereis: SPOOL_ENOENT. unregister: SPOOL_ENOENT.
 */
SPOOL_API int spool_register(spool_runtime *rt, const char *name, spool_id id);
SPOOL_API int spool_whereis(spool_runtime *rt, const char *name, spool_id *out);
SPOOL_API int spool_unregister(spool_runtime *rt, const char *name);

/*
 * Where an actor lives now (any thread). Errors: SPOOL_ENOENT, SPOOL_EINVAL.
 */
SPOOL_API int spool_actor_thread(spool_runtime *rt, spool_id id, int *out);

/*
 * Moves an actor to another thread between two of its turns. The move is queued like a message, so
 * everything sent before it is handled on the old thread and everything after on the new one; no
 * message is lost or reordered. A dedicated actor stays where it is, and no actor moves onto a
 * dedicated thread. Any thread. Errors: SPOOL_ENOENT, SPOOL_EINVAL (thread out of range),
 * SPOOL_EBUSY (dedicated), SPOOL_ESTATE (spawned pinned), SPOOL_ESTOPPED, SPOOL_ENOMEM.
 */
SPOOL_API int spool_actor_move(spool_runtime *rt, spool_id id, int thread);

/* Counters of one mailbox. Figures are consistent when the actor is idle; live they may lag by a
 * turn. */
typedef struct spool_mailbox_stats {
    uint64_t enqueued;   /* accepted into the mailbox */
    uint64_t dequeued;   /* taken out (handled or dropped) */
    uint64_t depth;      /* waiting now */
    uint64_t high_water; /* largest depth seen */
    uint64_t rejected;   /* refused: mailbox full */
    uint64_t dropped;    /* dropped oldest */
    int thread;          /* home thread */
} spool_mailbox_stats;

/* Reads an actor's mailbox counters (any thread, never blocks the actor). Errors: SPOOL_ENOENT. */
SPOOL_API int spool_mailbox_stats_get(spool_runtime *rt, spool_id id, spool_mailbox_stats *out);

/* ---------------------------------------------------------------------------------------------- */
/* Metrics                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

/*
 * Histogram buckets: fixed, log-scale, 1-2.5-5 per decade from 100 ns to 10 s, plus +Inf.
 * spool_histogram_bounds() gives the upper bounds in seconds (SPOOL_HISTOGRAM_BUCKETS - 1 finite
 * values; the last bucket is +Inf). Bucket counts are per bucket, not cumulative.
 */
#define SPOOL_HISTOGRAM_BUCKETS 26

typedef struct spool_histogram {
    uint64_t buckets[SPOOL_HISTOGRAM_BUCKETS];
    uint64_t count;     /* observations (= sum of buckets) */
    double sum_seconds; /* sum of the observed values */
} spool_histogram;

/* The finite upper bounds of the buckets, in seconds (SPOOL_HISTOGRAM_BUCKETS - 1 values). */
SPOOL_API const double *spool_histogram_bounds(void);

/*
 * The quantile `q` (0..1) of a histogram, in seconds: the upper bound of the bucket in which the
 * q-th observation falls (the last finite bound for the +Inf bucket); 0 when it is empty or NULL.
 */
SPOOL_API double spool_histogram_quantile(const spool_histogram *histogram, double q);

/* One actor's figures, consistent with each other (read under the actor's sequence lock). */
typedef struct spool_actor_metrics {
    spool_id id;
    char name[64];     /* registered name, or "" (cut to 63 bytes) */
    char behavior[64]; /* the behavior's name (cut to 63 bytes) */
    int thread;        /* home thread */
    uint64_t depth;    /* waiting now */
    uint64_t high_water;
    uint64_t enqueued;
    uint64_t dequeued;
    uint64_t rejected;
    uint64_t dropped;
    uint64_t handled;           /* messages given to the handler */
    spool_histogram wait;       /* enqueue -> dequeue, sampled messages */
    spool_histogram processing; /* handler time per message, sampled messages */
} spool_actor_metrics;

typedef struct spool_thread_metrics {
    int thread;
    int cpu;             /* the CPU it is pinned to, or -1 */
    double busy_seconds; /* time not spent idle (spinning or asleep) since start */
    uint64_t messages;   /* messages handled */
    uint64_t wakeups;    /* wake-ups from sleep */
    uint64_t actors;     /* actors whose home it is */
    uint64_t ready;      /* actors waiting on its ready queue */
} spool_thread_metrics;

/* A snapshot of the whole runtime. */
typedef struct spool_metrics {
    double uptime_seconds; /* since spool_runtime_start (0 before) */
    uint32_t sample_every; /* histograms observe one message in this many (1: every message) */
    int enabled;           /* 0 when the runtime runs with metrics off */
    size_t thread_count;
    spool_thread_metrics *threads;
    size_t actor_count;
    spool_actor_metrics *actors; /* live actors, in slot order */
    uint64_t dead_letters[SPOOL_DEAD_REASON_COUNT];
} spool_metrics;

/*
 * Takes a snapshot without stopping anything: the reader copies each actor's figures under its
 * sequence lock (retrying if a turn was writing them), so it never blocks or slows a scheduler
 * thread, and each actor's figures are consistent with each other. Any thread.
 * Errors: SPOOL_EINVAL, SPOOL_ENOMEM.
 */
SPOOL_API int spool_metrics_snapshot(spool_runtime *rt, spool_metrics **out);

/* Frees a snapshot and sets *metrics to NULL. NULL-safe. */
SPOOL_API void spool_metrics_destroy(spool_metrics **metrics);

/* ---------------------------------------------------------------------------------------------- */
/* Request / reply                                                                                */
/* ---------------------------------------------------------------------------------------------- */

/*
 * The continuation of a spool_call, run on the caller's home thread like a message. status is 0
 * with the reply, SPOOL_ETIMEDOUT, or SPOOL_ENOENT when the callee ended before answering (reply
 * NULL).
 */
typedef void (*spool_reply_fn)(spool_ctx *ctx, void *state, int status, const spool_message *reply,
                               void *arg);

/*
 * Inside a handler: sends a request and returns at once; no thread blocks. The continuation runs
 * exactly once: with the reply, or with an error after `timeout_ms` (0 = no timeout), or when the
 * callee ends with the request unanswered. Errors (the continuation will then not run):
 * SPOOL_EINVAL (not in a handler), and those of spool_send.
 */
SPOOL_API int spool_call(spool_ctx *ctx, spool_id to, uint32_t type, const void *data, size_t size,
                         unsigned timeout_ms, spool_reply_fn cont, void *arg);

/*
 * Answers a request. `request` is the received message, or a copy of it (only from and request_id
 * are read), so an actor may answer later. Any thread. A reply nobody waits for any more is a
 * SPOOL_DEAD_LATE_REPLY dead letter. Errors: SPOOL_EINVAL (not a request), those of spool_send.
 */
SPOOL_API int spool_reply(spool_runtime *rt, const spool_message *request, uint32_t type,
                          const void *data, size_t size);

/*
 * From a thread outside the runtime: sends a request and blocks until the reply or `timeout_ms`
 * (0 = forever). On success *out holds the reply (free with spool_response_destroy).
 * Errors: SPOOL_EDEADLK (called on a scheduler thread), SPOOL_ETIMEDOUT, SPOOL_ENOENT (callee gone
 * or ended before answering), those of spool_send.
 */
SPOOL_API int spool_call_wait(spool_runtime *rt, spool_id to, uint32_t type, const void *data,
                              size_t size, unsigned timeout_ms, spool_response **out);

/* The reply message (type, data, size). NULL if response is NULL. */
SPOOL_API const spool_message *spool_response_message(const spool_response *response);

/* Frees a response and sets *response to NULL. NULL-safe. */
SPOOL_API void spool_response_destroy(spool_response **response);

/* ---------------------------------------------------------------------------------------------- */
/* Timers                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

typedef uint64_t spool_timer;

/*
 * Sends a copy of the message to `to` after `delay_ms`. Timers live in the scheduler threads (one
 * heap per thread, no thread per timer). The message is "sent" when the timer fires: if `to` is
 * gone then, it is a dead letter. Any thread. `out` may be NULL. Errors: SPOOL_EINVAL,
 * SPOOL_EMSGSIZE, SPOOL_ENOMEM, SPOOL_ESTOPPED.
 */
SPOOL_API int spool_send_after(spool_runtime *rt, spool_id to, unsigned delay_ms, uint32_t type,
                               const void *data, size_t size, spool_timer *out);

/*
 * Cancels a timer. On the thread that owns the timer (an actor cancelling its own timer) the answer
 * is exact: 0 if it will not fire, SPOOL_ENOENT if it already fired. From other threads the cancel
 * is queued to the owning thread and 0 means "requested". Errors: SPOOL_EINVAL.
 */
SPOOL_API int spool_timer_cancel(spool_runtime *rt, spool_timer timer);

/* ---------------------------------------------------------------------------------------------- */
/* Nodes (the runtime's side; starting a node is spool_node.h's, in libspool_nodes)               */
/* ---------------------------------------------------------------------------------------------- */

/*
 * An id's node field is 0 for an actor of this process, else an index into this process's table of
 * the other nodes it has heard of, one entry per (node name, incarnation): a node that restarts is
 * a new entry, so an id from its earlier life is refused (SPOOL_DEAD_STALE_INCARNATION) instead of
 * reaching whoever has that slot now. Indexes mean nothing in another process: to put an id inside
 * message bytes, export it (name, incarnation, local part) and import it on the other side. The
 * Lua layer does this for every id in a value. Sends, calls, replies, spool_monitor and
 * spool_actor_stop take remote ids like local ones; see docs/nodes.md for the promise.
 */

#define SPOOL_NODE_NAME_MAX 63 /* bytes of a node name, [A-Za-z0-9_.-] */

/* A node-independent form of an id. */
typedef struct spool_remote_id {
    char node[SPOOL_NODE_NAME_MAX + 1]; /* NUL-terminated */
    uint64_t incarnation;               /* that node's life (random at its start, never 0) */
    uint64_t local;                     /* generation | slot: 48 bits */
} spool_remote_id;

/* Whether the `len` bytes at `name` are a node name: 1..SPOOL_NODE_NAME_MAX of [A-Za-z0-9_.-], not
 * starting with '.' or '-' (a name is also a key file's name: no hidden files, nothing that reads
 * as an option). 1 or 0; NULL is not a name. No runtime needed. */
SPOOL_API int spool_node_name_valid(const char *name, size_t len);

/* The name of this process's node; NULL when no node runs. Any thread. */
SPOOL_API const char *spool_node_self(const spool_runtime *rt);

/* Is this id of another node? (no runtime needed) */
SPOOL_API int spool_id_is_remote(spool_id id);

/*
 * id -> its node-independent form (a local id gets this node's name and incarnation). Any thread.
 * Errors: SPOOL_EINVAL (NULL, id 0), SPOOL_ENOENT (a local id while no node runs; an index never
 * given out).
 */
SPOOL_API int spool_id_export(spool_runtime *rt, spool_id id, spool_remote_id *out);

/*
 * Node-independent form -> id: this node's own name and incarnation give the local id; another
 * node's (name, incarnation) gets its table entry, made on first sight (a send to it before that
 * node is met is SPOOL_DEAD_UNKNOWN_NODE, after its session ended SPOOL_DEAD_NODE_DOWN, after it
 * restarted SPOOL_DEAD_STALE_INCARNATION). This node's name with another incarnation is an earlier
 * life of this process: its ids are stale (an entry that refuses everything). Any thread.
 * Errors: SPOOL_EINVAL (NULL, a bad name, incarnation 0, local over 48 bits), SPOOL_ENOMEM
 * (the table is full: 4095 entries).
 */
SPOOL_API int spool_id_import(spool_runtime *rt, const spool_remote_id *remote, spool_id *out);

/*
 * The id of a node's node actor (which answers spool_node_whereis; also where a message to "node
 * b" goes), for this node's name too. Any thread. Errors: SPOOL_EINVAL, SPOOL_ENOENT (a node that
 * is not UP now, or no node runs).
 */
SPOOL_API int spool_node_actor(spool_runtime *rt, const char *node, spool_id *out);

/* The data of SPOOL_MSG_NODEUP and SPOOL_MSG_NODEDOWN. */
typedef struct spool_node_event {
    char node[SPOOL_NODE_NAME_MAX + 1];
    uint64_t incarnation; /* the life that came up or went down */
    char reason[96];      /* NODEDOWN: "disconnected", "heartbeat timeout", "goodbye", ... */
} spool_node_event;

/*
 * Inside a handler: the running actor gets SPOOL_MSG_NODEUP / SPOOL_MSG_NODEDOWN (data:
 * spool_node_event) each time `node` ("*": every node) comes up or goes down, until it ends or
 * calls it again with on = 0. If the node is not up now, a NODEDOWN ("not connected") comes at
 * once. Errors: SPOOL_EINVAL (not in a handler, bad name), SPOOL_ESTATE (no node runs),
 * SPOOL_ENOMEM.
 */
SPOOL_API int spool_node_monitor(spool_ctx *ctx, const char *node, int on);

/* The names of the nodes UP now (NUL-terminated), at most `capacity`; *count (may be NULL) gets how
 * many are UP. Any thread. Errors: SPOOL_EINVAL; SPOOL_ESTATE when no node runs. */
SPOOL_API int spool_node_members(spool_runtime *rt, char (*names)[SPOOL_NODE_NAME_MAX + 1],
                                 size_t capacity, size_t *count);

/*
 * Inside a handler: asks `node` which actor is registered there as `name`. The continuation gets
 * status 0 and a reply whose data is the spool_id (8 bytes, already an id of this process), or
 * SPOOL_ENOENT (no such name there), SPOOL_ETIMEDOUT, or the send's error. For this node's own
 * name it asks the local registry the same way. Errors: those of spool_call.
 */
SPOOL_API int spool_node_whereis(spool_ctx *ctx, const char *node, const char *name,
                                 unsigned timeout_ms, spool_reply_fn cont, void *arg);

/* What one peer looks like now (spool_node_peers). */
typedef struct spool_node_peer {
    char node[SPOOL_NODE_NAME_MAX + 1];
    char endpoint[256];
    const char *state; /* "joining", "up", "down" (static string) */
    uint64_t incarnation;
    uint64_t messages_in, messages_out, bytes_in, bytes_out;
    uint64_t queued_messages, queued_bytes; /* waiting in its send queue now */
    uint64_t rtt_ns;                        /* last heartbeat round trip; 0 before any */
    uint64_t heartbeats_missed, ups, downs;
    uint64_t dead_letters[SPOOL_DEAD_REASON_COUNT]; /* sends to it that became dead letters */
} spool_node_peer;

/* The peers this node knows, at most `capacity` into peers; *count (may be NULL) gets how many.
 * Any thread. Errors: SPOOL_EINVAL; SPOOL_ESTATE when no node runs. */
SPOOL_API int spool_node_peers(spool_runtime *rt, spool_node_peer *peers, size_t capacity,
                               size_t *count);

#ifdef __cplusplus
}
#endif

#endif /* SPOOL_H */
