/*
 * test_placement.c - where spool_spawn puts actors (spool_actor_thread): explicit threads, the
 * policies, near, dedicated threads, config rules from C and from an INI file (and its refusals),
 * SPOOL_* variables, and spool_actor_move keeping every message in order across the move.
 */
#include "tests/support.h"

#include <limits.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum {
    T_WHERE = 1, /* request: answer with spool_ctx_thread and the OS thread */
    T_SEQ,       /* mover: a numbered message */
    T_AFFINITY,  /* request: answer with the CPUs this thread may run on */
};

#define WAIT_MS 5000u

static const char *const spool_variables[] = {"SPOOL_THREADS", "SPOOL_CPUS", "SPOOL_BATCH",
                                              "SPOOL_ADMIN", "SPOOL_CONFIG"};

/* ---------------------------------------------------------------------------------------------- */
/* Helpers                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static spool_config quiet_config(void) {
    spool_config config;
    spool_config_init(&config);
    config.ignore_environment = 1;
    config.threads = 2;
    return config;
}

static spool_runtime *start_with(const spool_config *config) {
    spool_runtime *rt = NULL;
    char error[512] = "";
    spool_config copy = *config;
    copy.error = error;
    copy.error_size = sizeof error;
    int rc = spool_runtime_create(&copy, &rt);
    if (rc != 0)
        print_error("spool_runtime_create: %s: %s\n", spool_strerror(rc), error);
    assert_int_equal(rc, 0);
    assert_int_equal(spool_runtime_start(rt), 0);
    return rt;
}

static spool_runtime *start_runtime(void) {
    spool_config config = quiet_config();
    return start_with(&config);
}

static void clear_environment(void) {
    for (size_t i = 0; i < sizeof spool_variables / sizeof spool_variables[0]; i++)
        unsetenv(spool_variables[i]);
}

/* What T_WHERE answers. */
typedef struct where {
    int ctx_thread;
    pthread_t pthread;
} where;

/* Probe: answers T_WHERE; any other message is ignored. */
static void probe_handle(spool_ctx *ctx, void *state, const spool_message *message) {
    (void)state;
    if (message->request_id == 0)
        return;
    if (message->type == T_WHERE) {
        where w = {spool_ctx_thread(ctx), pthread_self()};
        spool_reply(spool_ctx_runtime(ctx), message, T_WHERE, &w, sizeof w);
    } else if (message->type == T_AFFINITY) {
        cpu_set_t set;
        CPU_ZERO(&set);
        pthread_getaffinity_np(pthread_self(), sizeof set, &set);
        spool_reply(spool_ctx_runtime(ctx), message, T_AFFINITY, &set, sizeof set);
    }
}
static const spool_behavior probe_behavior = {"probe", probe_handle, NULL};

/* Spawns a probe with these options; returns the spawn's result. */
static int spawn_with(spool_runtime *rt, const spool_spawn_opts *opts, spool_id *out) {
    return spool_spawn(rt, &probe_behavior, NULL, opts, out);
}

static spool_id spawn_ok(spool_runtime *rt, const spool_spawn_opts *opts) {
    spool_id id = SPOOL_ID_NONE;
    assert_int_equal(spawn_with(rt, opts, &id), 0);
    assert_true(id != SPOOL_ID_NONE);
    return id;
}

static spool_id spawn_on(spool_runtime *rt, int thread) {
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = thread;
    return spawn_ok(rt, &opts);
}

static spool_id spawn_named(spool_runtime *rt, const char *name, const char *placement) {
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.name = name;
    opts.placement = placement;
    return spawn_ok(rt, &opts);
}

static spool_id spawn_policy(spool_runtime *rt, const char *placement) {
    return spawn_named(rt, NULL, placement);
}

static int thread_of(spool_runtime *rt, spool_id id) {
    int thread = -1;
    assert_int_equal(spool_actor_thread(rt, id, &thread), 0);
    return thread;
}

/* Asks the actor itself where it runs. */
static where ask_where(spool_runtime *rt, spool_id id) {
    spool_response *response = NULL;
    assert_int_equal(spool_call_wait(rt, id, T_WHERE, NULL, 0, WAIT_MS, &response), 0);
    const spool_message *reply = spool_response_message(response);
    assert_int_equal(reply->size, sizeof(where));
    where w;
    memcpy(&w, reply->data, sizeof w);
    spool_response_destroy(&response);
    return w;
}

/* Stops an actor from outside and waits (bounded) until its id is gone. */
static void stop_and_forget(spool_runtime *rt, spool_id id) {
    assert_int_equal(spool_actor_stop(rt, id, 0), 0);
    int thread;
    for (int i = 0; i < 5000 && spool_actor_thread(rt, id, &thread) == 0; i++)
        nanosleep(&(struct timespec){0, 1000000}, NULL);
    assert_int_equal(spool_actor_thread(rt, id, &thread), SPOOL_ENOENT);
}

/* A scratch file for the INI tests. */
typedef struct ini_file {
    char dir[64];
    char path[PATH_MAX];
} ini_file;

static void write_ini(ini_file *f, const char *text) {
    snprintf(f->dir, sizeof f->dir, "/tmp/spool-test-placement-XXXXXX");
    assert_non_null(mkdtemp(f->dir));
    snprintf(f->path, sizeof f->path, "%s/spool.ini", f->dir);
    FILE *file = fopen(f->path, "w");
    assert_non_null(file);
    assert_true(fputs(text, file) >= 0);
    assert_int_equal(fclose(file), 0);
}

static void remove_ini(ini_file *f) {
    unlink(f->path);
    rmdir(f->dir);
}

/* ---------------------------------------------------------------------------------------------- */
/* Explicit threads and policies                                                                  */
/* ---------------------------------------------------------------------------------------------- */

static void explicit_thread_places_the_actor_there(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    for (int round = 0; round < 2; round++) {
        for (int thread = 1; thread >= 0; thread--) {
            spool_id id = spawn_on(rt, thread);
            assert_int_equal(thread_of(rt, id), thread);
            assert_int_equal(ask_where(rt, id).ctx_thread, thread);
        }
    }
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void explicit_thread_out_of_range_is_einval(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    assert_int_equal(spool_runtime_threads(rt), 2);
    const int bad[] = {2, 3, 1000, -2, INT_MIN};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spool_spawn_opts opts = spool_spawn_opts_default();
        opts.thread = bad[i];
        spool_id id = 12345;
        assert_int_equal(spawn_with(rt, &opts, &id), SPOOL_EINVAL);
        assert_int_equal(id, 12345); /* untouched on failure */
    }
    /* Nothing was spawned: the runtime has no actor to wait for. */
    assert_int_equal(spool_runtime_wait(rt, 0), 0);
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void round_robin_spreads_ten_actors_five_and_five(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    int per_thread[2] = {0, 0};
    for (int i = 0; i < 10; i++) /* the default policy */
        per_thread[thread_of(rt, spawn_ok(rt, NULL))]++;
    assert_int_equal(per_thread[0], 5);
    assert_int_equal(per_thread[1], 5);
    for (int i = 0; i < 10; i++) /* the same, asked for by name */
        per_thread[thread_of(rt, spawn_policy(rt, "round_robin"))]++;
    assert_int_equal(per_thread[0], 10);
    assert_int_equal(per_thread[1], 10);
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void hash_places_a_name_on_the_same_thread_in_every_runtime(void **state) {
    (void)state;
    static const char *const names[] = {"alpha", "beta",  "gamma",   "delta", "epsilon", "zeta",
                                        "eta",   "theta", "iota",    "kappa", "lambda",  "mu",
                                        "nu",    "xi",    "omicron", "pi"};
    enum { NAMES = sizeof names / sizeof names[0] };
    spool_runtime *first = start_runtime();
    spool_runtime *second = start_runtime();
    int used[2] = {0, 0};
    for (int i = 0; i < NAMES; i++) {
        int a = thread_of(first, spawn_named(first, names[i], "hash"));
        /* Different history in the second runtime: round_robin spawns in between. */
        spawn_ok(second, NULL);
        int b = thread_of(second, spawn_named(second, names[i], "hash"));
        assert_int_equal(a, b);
        used[a]++;
    }
    /* A real hash: the names do not all land on one thread. */
    assert_true(used[0] > 0);
    assert_true(used[1] > 0);
    support_finish(&second, NO_DEAD_LETTERS);
    support_finish(&first, NO_DEAD_LETTERS);
}

static void hash_refuses_an_unnamed_actor_with_einval(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.placement = "hash";
    spool_id id = SPOOL_ID_NONE;
    assert_int_equal(spawn_with(rt, &opts, &id), SPOOL_EINVAL);
    assert_int_equal(id, SPOOL_ID_NONE);
    support_finish(&rt, NO_DEAD_LETTERS);

    /* The same through the config's default policy. */
    spool_config config = quiet_config();
    config.placement_default = "hash";
    rt = start_with(&config);
    assert_int_equal(spawn_with(rt, NULL, &id), SPOOL_EINVAL);
    assert_int_equal(id, SPOOL_ID_NONE);
    spawn_named(rt, "named", NULL);
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void least_loaded_picks_the_thread_with_fewer_actors(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    for (int i = 0; i < 3; i++)
        spawn_on(rt, 0);
    /* Both threads idle: 3 actors against 0, then 1, then 2. */
    for (int i = 0; i < 3; i++)
        assert_int_equal(thread_of(rt, spawn_policy(rt, "least_loaded")), 1);
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void near_name_and_near_id_put_the_actor_with_the_other(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    const char *names[2] = {"on-zero", "on-one"};
    for (int thread = 0; thread < 2; thread++) {
        spool_spawn_opts opts = spool_spawn_opts_default();
        opts.name = names[thread];
        opts.thread = thread;
        spool_id other = spawn_ok(rt, &opts);

        char near[32];
        snprintf(near, sizeof near, "near:%s", names[thread]);
        for (int i = 0; i < 3; i++) /* round_robin in between would alternate */
            assert_int_equal(thread_of(rt, spawn_policy(rt, near)), thread);

        opts = spool_spawn_opts_default();
        opts.near = other;
        for (int i = 0; i < 3; i++)
            assert_int_equal(thread_of(rt, spawn_ok(rt, &opts)), thread);

        /* near wins over a policy named at spawn, an explicit thread wins over near. */
        opts.placement = "hash";
        assert_int_equal(thread_of(rt, spawn_ok(rt, &opts)), thread);
        opts.thread = 1 - thread;
        assert_int_equal(thread_of(rt, spawn_ok(rt, &opts)), 1 - thread);
    }
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void near_an_unknown_actor_is_enoent(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.placement = "near:nobody";
    spool_id id = SPOOL_ID_NONE;
    assert_int_equal(spawn_with(rt, &opts, &id), SPOOL_ENOENT);

    spool_id gone = spawn_on(rt, 1);
    stop_and_forget(rt, gone);
    opts = spool_spawn_opts_default();
    opts.near = gone;
    assert_int_equal(spawn_with(rt, &opts, &id), SPOOL_ENOENT);
    assert_int_equal(id, SPOOL_ID_NONE);
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void unknown_policy_at_spawn_is_einval(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    const char *bad[] = {"fastest", "", "near:", "dedicated:x", "2", "round-robin"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        spool_spawn_opts opts = spool_spawn_opts_default();
        opts.placement = bad[i];
        spool_id id = SPOOL_ID_NONE;
        int rc = spawn_with(rt, &opts, &id);
        if (rc != SPOOL_EINVAL)
            print_error("placement '%s': %s\n", bad[i], spool_strerror(rc));
        assert_int_equal(rc, SPOOL_EINVAL);
        assert_int_equal(id, SPOOL_ID_NONE);
    }
    support_finish(&rt, NO_DEAD_LETTERS);
}

/* ---------------------------------------------------------------------------------------------- */
/* Dedicated threads                                                                              */
/* ---------------------------------------------------------------------------------------------- */

static void dedicated_takes_an_empty_thread_until_it_ends(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    spawn_on(rt, 1); /* thread 1 is not empty: the only empty thread is 0 */
    spool_id lonely = spawn_named(rt, "lonely", "dedicated");
    assert_int_equal(thread_of(rt, lonely), 0);
    assert_int_equal(ask_where(rt, lonely).ctx_thread, 0);

    /* No policy places anything there any more. */
    for (int i = 0; i < 10; i++) {
        assert_int_equal(thread_of(rt, spawn_ok(rt, NULL)), 1);
        assert_int_equal(thread_of(rt, spawn_policy(rt, "least_loaded")), 1);
        char name[16];
        snprintf(name, sizeof name, "h%d", i);
        assert_int_equal(thread_of(rt, spawn_named(rt, name, "hash")), 1);
    }
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = 0;
    spool_id id = SPOOL_ID_NONE;
    assert_int_equal(spawn_with(rt, &opts, &id), SPOOL_EBUSY);
    opts = spool_spawn_opts_default();
    opts.placement = "dedicated";
    assert_int_equal(spawn_with(rt, &opts, &id), SPOOL_EBUSY); /* no empty thread left */
    assert_int_equal(id, SPOOL_ID_NONE);

    /* Once it ended the thread is an ordinary one again. */
    stop_and_forget(rt, lonely);
    int per_thread[2] = {0, 0};
    for (int i = 0; i < 2; i++)
        per_thread[thread_of(rt, spawn_ok(rt, NULL))]++;
    assert_int_equal(per_thread[0], 1);
    assert_int_equal(per_thread[1], 1);
    assert_int_equal(thread_of(rt, spawn_on(rt, 0)), 0);
    assert_int_equal(spawn_with(rt, &opts, &id), SPOOL_EBUSY); /* both threads have actors */
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void dedicated_takes_the_thread_of_its_own_when_both_are_empty(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    spool_id lonely = spawn_policy(rt, "dedicated");
    int mine = thread_of(rt, lonely);
    assert_true(mine == 0 || mine == 1);
    for (int i = 0; i < 6; i++)
        assert_int_equal(thread_of(rt, spawn_ok(rt, NULL)), 1 - mine);
    spool_id id = SPOOL_ID_NONE;
    assert_int_equal(
        spawn_with(rt, &(spool_spawn_opts){.thread = SPOOL_THREAD_ANY, .placement = "dedicated"},
                   &id),
        SPOOL_EBUSY);
    stop_and_forget(rt, lonely);
    assert_int_equal(thread_of(rt, spawn_on(rt, mine)), mine);
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void dedicated_actor_cannot_move_and_its_thread_is_released_when_it_ends(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    spool_id lonely = spawn_policy(rt, "dedicated");
    int mine = thread_of(rt, lonely);
    int other = 1 - mine;
    /* A dedicated actor stays on its thread; once it ended, the thread is free again. */
    assert_int_equal(spool_actor_move(rt, lonely, other), SPOOL_EBUSY); /* it keeps its thread */
    assert_int_equal(ask_where(rt, lonely).ctx_thread, mine);
    stop_and_forget(rt, lonely);

    spool_id id = SPOOL_ID_NONE;
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = mine;
    int rc = spawn_with(rt, &opts, &id);
    support_finish(&rt, NO_DEAD_LETTERS);
    assert_int_equal(rc, 0);
}

static void near_a_dedicated_actor_is_refused_with_ebusy(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    spool_id lonely = spawn_named(rt, "lonely", "dedicated");
    int mine = thread_of(rt, lonely);

    spool_spawn_opts by_id = spool_spawn_opts_default();
    by_id.near = lonely;
    spool_id id = SPOOL_ID_NONE;
    int rc_by_id = spawn_with(rt, &by_id, &id);
    int rc_by_name = spawn_with(
        rt, &(spool_spawn_opts){.thread = SPOOL_THREAD_ANY, .placement = "near:lonely"}, &id);
    spool_spawn_opts explicit = spool_spawn_opts_default();
    explicit.thread = mine;
    assert_int_equal(spawn_with(rt, &explicit, &id), SPOOL_EBUSY); /* the thread is refused */
    support_finish(&rt, NO_DEAD_LETTERS);
    /* "near" a dedicated actor would share its thread: refused like an explicit thread. */
    assert_int_equal(rc_by_id, SPOOL_EBUSY);
    assert_int_equal(rc_by_name, SPOOL_EBUSY);
}

/* ---------------------------------------------------------------------------------------------- */
/* Configuration                                                                                  */
/* ---------------------------------------------------------------------------------------------- */

static void config_rules_are_applied_by_name(void **state) {
    (void)state;
    static const spool_placement_rule rules[] = {
        {"db", "1"}, {"worker*", "least_loaded"}, {"logger", "dedicated"}};
    spool_config config = quiet_config();
    config.placement = rules;
    config.placement_count = 3;
    spool_runtime *rt = start_with(&config);

    /* "db" is pinned to 1, so the dedicated logger gets the other thread, 0, and nothing else
     * goes there. A rule wins over the placement named at spawn. */
    spool_id db = spawn_named(rt, "db", "0");
    assert_int_equal(thread_of(rt, db), 1);
    spool_id logger = spawn_named(rt, "logger", NULL);
    assert_int_equal(thread_of(rt, logger), 0);
    for (int i = 0; i < 4; i++) {
        char name[16];
        snprintf(name, sizeof name, "worker%d", i);
        assert_int_equal(thread_of(rt, spawn_named(rt, name, NULL)), 1);
        assert_int_equal(thread_of(rt, spawn_ok(rt, NULL)), 1);
    }
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = 0;
    spool_id id = SPOOL_ID_NONE;
    assert_int_equal(spawn_with(rt, &opts, &id), SPOOL_EBUSY);

    /* The reservation outlives the logger: its thread stays empty, and a new logger gets it. */
    stop_and_forget(rt, logger);
    for (int i = 0; i < 4; i++)
        assert_int_equal(thread_of(rt, spawn_ok(rt, NULL)), 1);
    assert_int_equal(thread_of(rt, spawn_named(rt, "logger", NULL)), 0);
    support_finish(&rt, NO_DEAD_LETTERS);

    /* Without the logger, worker* really is least_loaded: db and two more make thread 1 busier,
     * so three workers in a row go to 0 where round_robin would alternate. */
    config.placement_count = 2;
    rt = start_with(&config);
    assert_int_equal(thread_of(rt, spawn_named(rt, "db", NULL)), 1);
    spawn_on(rt, 1);
    spawn_on(rt, 1);
    for (int i = 0; i < 3; i++) {
        char name[16];
        snprintf(name, sizeof name, "worker-%d", i);
        assert_int_equal(thread_of(rt, spawn_named(rt, name, NULL)), 0);
    }
    support_finish(&rt, NO_DEAD_LETTERS);
}

static void config_file_rules_are_applied(void **state) {
    (void)state;
    ini_file file;
    write_ini(&file, "[runtime]\n"
                     "threads = 2\n"
                     "batch   = 64             ; messages per actor per turn\n"
                     "admin   = ipc:///tmp/spool-test-placement.sock\n"
                     "\n"
                     "[placement]\n"
                     "default = round_robin    ; round_robin | least_loaded | hash\n"
                     "sqlite  = 1              ; actor or module name -> thread\n"
                     "logger  = dedicated      ; a thread of its own\n"
                     "cache   = near:sqlite    ; on the same thread as another actor\n"
                     "worker* = least_loaded   ; glob on names\n");
    spool_config config;
    spool_config_init(&config);
    config.ignore_environment = 1; /* threads come from the file */
    config.config_file = file.path;
    spool_runtime *rt = start_with(&config);
    remove_ini(&file);

    assert_int_equal(spool_runtime_threads(rt), 2);
    assert_string_equal(spool_runtime_admin(rt), "ipc:///tmp/spool-test-placement.sock");
    spool_id sqlite = spawn_named(rt, "sqlite", NULL);
    assert_int_equal(thread_of(rt, sqlite), 1);
    assert_int_equal(thread_of(rt, spawn_named(rt, "cache", NULL)), 1);
    /* sqlite = 1 claims thread 1, so plain "dedicated" reserves thread 0 for the logger. */
    assert_int_equal(thread_of(rt, spawn_named(rt, "logger", NULL)), 0);
    assert_int_equal(thread_of(rt, spawn_named(rt, "worker1", NULL)), 1);
    assert_int_equal(thread_of(rt, spawn_named(rt, "worker2", NULL)), 1);
    assert_int_equal(thread_of(rt, spawn_ok(rt, NULL)), 1);
    support_finish(&rt, NO_DEAD_LETTERS);
}

/* Creates a runtime from `text` and expects SPOOL_ECONFIG with "<path>:<line>: " first. */
static void expect_file_refused(const char *text, int line, const char *mentions) {
    ini_file file;
    write_ini(&file, text);
    spool_config config;
    spool_config_init(&config);
    config.ignore_environment = 1;
    config.config_file = file.path;
    char error[512] = "";
    config.error = error;
    config.error_size = sizeof error;
    spool_runtime *rt = NULL;
    int rc = spool_runtime_create(&config, &rt);
    remove_ini(&file);
    assert_int_equal(rc, SPOOL_ECONFIG);
    assert_null(rt);
    char prefix[PATH_MAX + 32];
    snprintf(prefix, sizeof prefix, "%s:%d: ", file.path, line);
    if (strncmp(error, prefix, strlen(prefix)) != 0)
        print_error("error '%s' does not start with '%s'\n", error, prefix);
    assert_int_equal(strncmp(error, prefix, strlen(prefix)), 0);
    assert_non_null(strstr(error, mentions));
}

static void config_file_with_conflicting_rules_is_refused_with_path_and_line(void **state) {
    (void)state;
    /* The logger asks for thread 1 as its own, but sqlite is placed there. */
    expect_file_refused("[runtime]\n"
                        "threads = 2\n"
                        "[placement]\n"
                        "sqlite  = 1\n"
                        "logger  = dedicated:1\n",
                        5, "logger");
    /* Plain "dedicated" with both threads named by rules: no thread is left for it. */
    expect_file_refused("[runtime]\n"
                        "threads = 2\n"
                        "[placement]\n"
                        "sqlite  = 1\n"
                        "db      = 0\n"
                        "logger  = dedicated\n",
                        6, "logger");
    /* A rule naming a thread beyond the file's own thread count. */
    expect_file_refused("[runtime]\n"
                        "threads = 2\n"
                        "[placement]\n"
                        "sqlite  = 2\n",
                        4, "thread 2");
}

static int highest_allowed_cpu(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
    for (int cpu = CPU_SETSIZE - 1; cpu >= 0; cpu--)
        if (CPU_ISSET(cpu, &set))
            return cpu;
    fail_msg("no CPU in this process's affinity mask");
    return -1;
}

static void environment_variables_are_honoured_unless_ignored(void **state) {
    (void)state;
    clear_environment();
    long online = sysconf(_SC_NPROCESSORS_ONLN);
    int threads = online >= 1 && online < 8 ? (int)online + 1 : 3; /* not the default */
    char text[32];
    snprintf(text, sizeof text, "%d", threads);
    setenv("SPOOL_THREADS", text, 1);
    int cpu = highest_allowed_cpu();
    snprintf(text, sizeof text, "%d", cpu);
    setenv("SPOOL_CPUS", text, 1);

    /* config.threads stays 0: a field set in C would win over the environment. */
    spool_config config;
    spool_config_init(&config);
    spool_runtime *rt = start_with(&config);
    assert_int_equal(spool_runtime_threads(rt), threads);
    for (int t = 0; t < threads; t++) { /* every thread pinned to the one CPU listed */
        spool_id id = spawn_on(rt, t);
        spool_response *response = NULL;
        assert_int_equal(spool_call_wait(rt, id, T_AFFINITY, NULL, 0, WAIT_MS, &response), 0);
        cpu_set_t set;
        memcpy(&set, spool_response_message(response)->data, sizeof set);
        spool_response_destroy(&response);
        assert_int_equal(CPU_COUNT(&set), 1);
        assert_true(CPU_ISSET(cpu, &set));
    }
    support_finish(&rt, NO_DEAD_LETTERS);

    /* A bad value is reported under the variable's name. */
    setenv("SPOOL_CPUS", "nonsense", 1);
    char error[256] = "";
    config.error = error;
    config.error_size = sizeof error;
    assert_int_equal(spool_runtime_create(&config, &rt), SPOOL_ECONFIG);
    assert_null(rt);
    assert_int_equal(strncmp(error, "SPOOL_CPUS: ", 12), 0);

    /* ignore_environment skips them all. */
    config.ignore_environment = 1;
    assert_int_equal(spool_runtime_create(&config, &rt), 0);
    assert_true(spool_runtime_threads(rt) != threads);
    spool_runtime_destroy(&rt);
    clear_environment();
}

/* ---------------------------------------------------------------------------------------------- */
/* Moving                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

enum { MOVE_MESSAGES = 10000, MOVE_AT = 5000 };

typedef struct mover_state {
    uint32_t next;
    int out_of_order;
    int ctx_thread[MOVE_MESSAGES];
    pthread_t pthread[MOVE_MESSAGES];
} mover_state;

static void mover_handle(spool_ctx *ctx, void *state, const spool_message *message) {
    mover_state *s = state;
    if (message->type == T_SEQ) {
        uint32_t seq;
        memcpy(&seq, message->data, sizeof seq);
        if (seq != s->next || seq >= MOVE_MESSAGES) {
            s->out_of_order++;
            return;
        }
        s->ctx_thread[seq] = spool_ctx_thread(ctx);
        s->pthread[seq] = pthread_self();
        s->next = seq + 1;
    } else {
        probe_handle(ctx, NULL, message);
    }
}
static const spool_behavior mover_behavior = {"mover", mover_handle, NULL};

typedef struct sender {
    spool_runtime *rt;
    spool_id to;
    int send_errors;
    int move_rc;
} sender;

static void *send_around_a_move(void *p) {
    sender *s = p;
    for (uint32_t seq = 0; seq < MOVE_MESSAGES; seq++) {
        if (seq == MOVE_AT)
            s->move_rc = spool_actor_move(s->rt, s->to, 1);
        if (spool_send(s->rt, s->to, T_SEQ, &seq, sizeof seq) != 0)
            s->send_errors++;
    }
    return NULL;
}

static void move_keeps_every_message_in_order_and_runs_the_rest_on_the_new_thread(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    pthread_t scheduler[2];
    for (int t = 0; t < 2; t++) {
        where w = ask_where(rt, spawn_on(rt, t));
        assert_int_equal(w.ctx_thread, t);
        scheduler[t] = w.pthread;
    }
    assert_false(pthread_equal(scheduler[0], scheduler[1]));

    mover_state *m = calloc(1, sizeof *m);
    assert_non_null(m);
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = 0;
    spool_id mover = SPOOL_ID_NONE;
    assert_int_equal(spool_spawn(rt, &mover_behavior, m, &opts, &mover), 0);

    sender s = {rt, mover, 0, 1};
    pthread_t thread;
    assert_int_equal(pthread_create(&thread, NULL, send_around_a_move, &s), 0);
    assert_int_equal(pthread_join(thread, NULL), 0);
    assert_int_equal(s.move_rc, 0);
    assert_int_equal(s.send_errors, 0);

    /* Sent after all of them: answered once every numbered message was handled. */
    where after = ask_where(rt, mover);
    assert_int_equal(after.ctx_thread, 1);
    assert_true(pthread_equal(after.pthread, scheduler[1]));
    assert_int_equal(thread_of(rt, mover), 1);
    assert_int_equal(m->out_of_order, 0);
    assert_int_equal(m->next, MOVE_MESSAGES);
    int wrong_thread = 0;
    for (int i = 0; i < MOVE_MESSAGES; i++) {
        int expected = i < MOVE_AT ? 0 : 1;
        if (m->ctx_thread[i] != expected || !pthread_equal(m->pthread[i], scheduler[expected]))
            wrong_thread++;
    }
    assert_int_equal(wrong_thread, 0);
    support_finish(&rt, NO_DEAD_LETTERS);
    free(m);
}

static void move_refuses_a_thread_out_of_range_and_a_dead_id(void **state) {
    (void)state;
    spool_runtime *rt = start_runtime();
    spool_id id = spawn_on(rt, 0);
    assert_int_equal(spool_actor_move(rt, id, 2), SPOOL_EINVAL);
    assert_int_equal(spool_actor_move(rt, id, -1), SPOOL_EINVAL);
    assert_int_equal(spool_actor_move(NULL, id, 1), SPOOL_EINVAL);
    assert_int_equal(ask_where(rt, id).ctx_thread, 0); /* still there */

    spool_id gone = spawn_on(rt, 1);
    stop_and_forget(rt, gone);
    assert_int_equal(spool_actor_move(rt, gone, 0), SPOOL_ENOENT);
    assert_int_equal(spool_actor_move(rt, SPOOL_ID_NONE, 0), SPOOL_ENOENT);
    support_finish(&rt, NO_DEAD_LETTERS);
}

/* ---------------------------------------------------------------------------------------------- */
/* The seat handshake under a race: spawns aimed at a thread never land there while a dedicated
 * actor holds it, however they interleave with the dedicated claim (placement.c: claim_seat against
 * take_dedicated). Two threads keep spawning onto thread 2 while the test claims "dedicated:2". */

typedef struct churn {
    spool_runtime *rt;
    int stop;
    long spawned;
    long refused;
} churn;

static void *churn_spawner(void *p) {
    churn *c = p;
    while (!__atomic_load_n(&c->stop, __ATOMIC_ACQUIRE)) {
        /* A burst of spawns onto thread 2 (racing the dedicated claims), then rest until they are
         * gone, so thread 2 comes free and the claims can win too. */
        spool_id burst[4];
        int n = 0;
        for (int k = 0; k < 4; k++) {
            spool_spawn_opts opts = spool_spawn_opts_default();
            opts.thread = 2;
            int rc = spool_spawn(c->rt, &probe_behavior, NULL, &opts, &burst[n]);
            if (rc == 0) {
                __atomic_fetch_add(&c->spawned, 1, __ATOMIC_RELAXED);
                spool_actor_stop(c->rt, burst[n++], 0);
            } else {
                assert_int_equal(rc, SPOOL_EBUSY); /* thread 2 is dedicated right now */
                __atomic_fetch_add(&c->refused, 1, __ATOMIC_RELAXED);
            }
        }
        int thread;
        for (int k = 0; k < n; k++)
            while (spool_actor_thread(c->rt, burst[k], &thread) == 0)
                sched_yield();
    }
    return NULL;
}

static void racing_spawns_never_share_a_dedicated_thread(void **state) {
    (void)state;
    spool_config config = quiet_config();
    config.threads = 3;
    spool_runtime *rt = start_with(&config);
    churn c[2] = {{rt, 0, 0, 0}, {rt, 0, 0, 0}};
    pthread_t spawners[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(pthread_create(&spawners[i], NULL, churn_spawner, &c[i]), 0);
    long taken = 0, shared = 0, attempts = 0;
    long rounds = support_stress(200);
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    /* At least `rounds` claims, at least 300 ms, and until the spawners have tried many times (on
     * two CPUs they may not have run at all yet). */
    for (;; attempts++) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        long ms = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
        long tries = __atomic_load_n(&c[0].spawned, __ATOMIC_RELAXED) +
                     __atomic_load_n(&c[1].spawned, __ATOMIC_RELAXED) +
                     __atomic_load_n(&c[0].refused, __ATOMIC_RELAXED) +
                     __atomic_load_n(&c[1].refused, __ATOMIC_RELAXED);
        if ((taken >= rounds && ms >= 300 && tries >= 1000) || ms > 20000)
            break;
        spool_id lonely;
        spool_spawn_opts opts = spool_spawn_opts_default();
        opts.placement = "dedicated:2";
        if (spool_spawn(rt, &probe_behavior, NULL, &opts, &lonely) != 0) {
            sched_yield(); /* thread 2 had an actor at that instant: try again */
            continue;
        }
        taken++;
        /* Everyone alive on thread 2 now must be the dedicated actor itself. */
        spool_metrics *m = NULL;
        assert_int_equal(spool_metrics_snapshot(rt, &m), 0);
        for (size_t i = 0; i < m->actor_count; i++)
            if (m->actors[i].thread == 2 && m->actors[i].id != lonely)
                shared++;
        spool_metrics_destroy(&m);
        int home;
        assert_int_equal(spool_actor_stop(rt, lonely, 0), 0);
        while (spool_actor_thread(rt, lonely, &home) == 0)
            sched_yield();
    }
    for (int i = 0; i < 2; i++)
        __atomic_store_n(&c[i].stop, 1, __ATOMIC_RELEASE);
    for (int i = 0; i < 2; i++)
        pthread_join(spawners[i], NULL);
    print_message("dedicated: taken %ld times in %ld attempts; %ld spawns raced it, %ld refused\n",
                  taken, attempts, c[0].spawned + c[1].spawned, c[0].refused + c[1].refused);
    assert_true(taken > 0);
    assert_true(c[0].spawned + c[1].spawned + c[0].refused + c[1].refused >= 1000);
    assert_int_equal(shared, 0);
    support_finish(&rt, NO_DEAD_LETTERS);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(explicit_thread_places_the_actor_there),
        cmocka_unit_test(explicit_thread_out_of_range_is_einval),
        cmocka_unit_test(round_robin_spreads_ten_actors_five_and_five),
        cmocka_unit_test(hash_places_a_name_on_the_same_thread_in_every_runtime),
        cmocka_unit_test(hash_refuses_an_unnamed_actor_with_einval),
        cmocka_unit_test(least_loaded_picks_the_thread_with_fewer_actors),
        cmocka_unit_test(near_name_and_near_id_put_the_actor_with_the_other),
        cmocka_unit_test(near_an_unknown_actor_is_enoent),
        cmocka_unit_test(unknown_policy_at_spawn_is_einval),
        cmocka_unit_test(dedicated_takes_an_empty_thread_until_it_ends),
        cmocka_unit_test(dedicated_takes_the_thread_of_its_own_when_both_are_empty),
        cmocka_unit_test(dedicated_actor_cannot_move_and_its_thread_is_released_when_it_ends),
        cmocka_unit_test(near_a_dedicated_actor_is_refused_with_ebusy),
        cmocka_unit_test(config_rules_are_applied_by_name),
        cmocka_unit_test(config_file_rules_are_applied),
        cmocka_unit_test(config_file_with_conflicting_rules_is_refused_with_path_and_line),
        cmocka_unit_test(environment_variables_are_honoured_unless_ignored),
        cmocka_unit_test(move_keeps_every_message_in_order_and_runs_the_rest_on_the_new_thread),
        cmocka_unit_test(move_refuses_a_thread_out_of_range_and_a_dead_id),
        cmocka_unit_test(racing_spawns_never_share_a_dedicated_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
