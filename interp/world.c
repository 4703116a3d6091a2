/*
 * world.c - spool_lua: the interpreters of one runtime (one per scheduler thread, made there on
 * first use), the C API to start scripts and run a Lua program, and what is remembered about the
 * actors that failed.
 */
#include "interp/interp.h"

#include "mailbox/memory.h"

#include <lauxlib.h>
#include <lualib.h>
#include <msgpuck.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

void spool_lua_config_init(spool_lua_config *config) {
    if (!config)
        return;
    memset(config, 0, sizeof *config);
    config->report_errors = 1;
}

int spool_lua_create(spool_runtime *rt, const spool_lua_config *config, spool_lua **out) {
    if (!rt || !out)
        return SPOOL_EINVAL;
    *out = NULL;
    int threads = spool_runtime_threads(rt);
    if (threads <= 0)
        return SPOOL_EINVAL;
    spool_lua *w = calloc(1, sizeof *w);
    if (!w)
        return SPOOL_ENOMEM;
    if (config)
        w->config = *config;
    else
        spool_lua_config_init(&w->config);
    w->rt = rt;
    w->threads = threads;
    w->per_thread = aligned_alloc(64, sizeof(interp_thread) * (size_t)threads);
    w->path = w->config.path ? strdup(w->config.path) : NULL;
    w->cpath = w->config.cpath ? strdup(w->config.cpath) : NULL;
    if (!w->per_thread || (w->config.path && !w->path) || (w->config.cpath && !w->cpath)) {
        free(w->per_thread);
        free(w->path);
        free(w->cpath);
        free(w);
        return SPOOL_ENOMEM;
    }
    w->config.path = w->path;
    w->config.cpath = w->cpath;
    memset(w->per_thread, 0, sizeof(interp_thread) * (size_t)threads);
    for (int i = 0; i < threads; i++) {
        w->per_thread[i].world = w;
        w->per_thread[i].index = i;
        w->per_thread[i].scratch.allocator = &memory_default_allocator;
    }
    pthread_mutex_init(&w->lock, NULL);
    pthread_cond_init(&w->cond, NULL);
    *out = w;
    return 0;
}

int spool_lua_preload(spool_lua *w, const char *name, spool_lua_open_fn open) {
    if (!w || !name || !*name || !open)
        return SPOOL_EINVAL;
    /* Interpreters read the list when they are made, which only a Lua actor makes happen: the
     * first spawn freezes it (under the lock, so the list is complete before any thread reads). */
    pthread_mutex_lock(&w->lock);
    int rc = 0;
    if (w->frozen)
        rc = SPOOL_ESTATE;
    for (int i = 0; rc == 0 && i < w->preload_count; i++)
        if (strcmp(w->preloads[i].name, name) == 0)
            rc = SPOOL_EEXIST;
    struct preload *p = NULL;
    char *copy = NULL;
    if (rc == 0) {
        p = realloc(w->preloads, sizeof *p * (size_t)(w->preload_count + 1));
        if (p)
            w->preloads = p;
        copy = strdup(name);
        if (!p || !copy)
            rc = SPOOL_ENOMEM;
    }
    if (rc == 0) {
        p[w->preload_count].name = copy;
        p[w->preload_count].open = open;
        w->preload_count++;
    } else {
        free(copy);
    }
    pthread_mutex_unlock(&w->lock);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Interpreters                                                                                   */

static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
    interp_thread *t = ud;
    size_t old = ptr ? osize : 0;
    if (nsize == 0) {
        free(ptr);
        __atomic_store_n(&t->memory, t->memory - old, __ATOMIC_RELAXED);
        return NULL;
    }
    size_t limit = t->world->config.memory_limit;
    if (limit && nsize > old && t->memory + (nsize - old) > limit)
        return NULL;
    void *p = realloc(ptr, nsize);
    if (p)
        __atomic_store_n(&t->memory, t->memory - old + nsize, __ATOMIC_RELAXED);
    return p;
}

/* Prepends `more` to package[field]. */
static void prepend(lua_State *L, const char *field, const char *more) {
    if (!more || !*more)
        return;
    lua_getglobal(L, "package");
    lua_getfield(L, -1, field);
    lua_pushfstring(L, "%s;%s", more, lua_tostring(L, -1));
    lua_setfield(L, -3, field);
    lua_pop(L, 2);
}

static int open_protected(lua_State *L) {
    interp_thread *t = lua_touserdata(L, 1);
    spool_lua *w = t->world;
    luaL_openlibs(L);
    prepend(L, "path", w->config.path);
    prepend(L, "cpath", w->config.cpath);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "preload");
    lua_pushcfunction(L, luaopen_spool);
    lua_setfield(L, -2, "spool");
    lua_pushcfunction(L, luaopen_spool_service);
    lua_setfield(L, -2, LUA_SERVICE_NAME);
    for (int i = 0; i < w->preload_count; i++) {
        lua_pushcfunction(L, w->preloads[i].open);
        lua_setfield(L, -2, w->preloads[i].name);
    }
    lua_pop(L, 2);
    values_open(L);
    actor_open(L);
    return 0;
}

interp_thread *world_thread(spool_lua *w, int index) {
    if (index < 0 || index >= w->threads)
        return NULL;
    interp_thread *t = &w->per_thread[index];
    if (t->L)
        return t;
    lua_State *L = lua_newstate(lua_alloc, t);
    if (!L)
        return NULL;
    *(interp_thread **)lua_getextraspace(L) = t;
    lua_pushcfunction(L, open_protected);
    lua_pushlightuserdata(L, t);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        fprintf(stderr, "spool: cannot make the Lua interpreter of thread %d: %s\n", index,
                lua_tostring(L, -1));
        lua_close(L);
        return NULL;
    }
    t->L = L;
    stat_add(&w->states, 1);
    return t;
}

/* ---------------------------------------------------------------------------------------------- */
/* Failures and exits                                                                             */

void world_actor_failed(spool_lua *w, spool_id id, const char *what, const char *text, int report) {
    stat_add(&w->failed, 1);
    if (report && w->config.report_errors)
        fprintf(stderr, "spool: actor<%016llx> (%s) failed: %s\n", (unsigned long long)id, what,
                text);
    char *copy = strdup(text);
    pthread_mutex_lock(&w->lock);
    struct exit_text *e = &w->exits[w->exit_next];
    w->exit_next = (w->exit_next + 1) % (int)(sizeof w->exits / sizeof w->exits[0]);
    free(e->text);
    e->id = id;
    e->text = copy;
    pthread_mutex_unlock(&w->lock);
}

void world_exit_text(spool_lua *w, spool_id id, int reason, char *out, size_t size) {
    switch (reason) {
    case SPOOL_EXIT_NORMAL:
        snprintf(out, size, "normal");
        return;
    case SPOOL_EXIT_NOPROC:
        snprintf(out, size, "noproc");
        return;
    case SPOOL_EXIT_SHUTDOWN:
        snprintf(out, size, "shutdown");
        return;
    case SPOOL_EXIT_NOCONNECTION: /* on another node; the connection to it was lost */
        snprintf(out, size, "noconnection");
        return;
    case LUA_EXIT_ERROR:
        snprintf(out, size, "error");
        pthread_mutex_lock(&w->lock);
        for (size_t i = 0; i < sizeof w->exits / sizeof w->exits[0]; i++) {
            if (w->exits[i].id == id && w->exits[i].text) {
                snprintf(out, size, "error: %s", w->exits[i].text);
                break;
            }
        }
        pthread_mutex_unlock(&w->lock);
        return;
    default:
        snprintf(out, size, "exit %d", reason);
        return;
    }
}

void world_main_ended(spool_lua *w, int status, const char *error) {
    pthread_mutex_lock(&w->lock);
    if (!w->main_done) {
        w->main_done = 1;
        w->main_status = status;
        w->main_error = error ? strdup(error) : NULL;
        pthread_cond_broadcast(&w->cond);
    }
    pthread_mutex_unlock(&w->lock);
}

/* ---------------------------------------------------------------------------------------------- */
/* Starting scripts                                                                               */

/* Encodes strings as the MessagePack array a script receives as `...`. */
static char *encode_args(const char *const *args, int argc, size_t *size) {
    size_t need = mp_sizeof_array((uint32_t)argc);
    for (int i = 0; i < argc; i++)
        need += mp_sizeof_str((uint32_t)strlen(args[i]));
    char *buf = malloc(need);
    if (!buf)
        return NULL;
    char *p = mp_encode_array(buf, (uint32_t)argc);
    for (int i = 0; i < argc; i++)
        p = mp_encode_str(p, args[i], (uint32_t)strlen(args[i]));
    *size = (size_t)(p - buf);
    return buf;
}

/* The behavior of Lua actors running `script` (or module `script`): the same handler, named
 * "lua:worker" or "module:cjson" for metrics and spool top. Made once per name, kept until
 * spool_lua_destroy (a snapshot may read the name while an actor ends). */
static const spool_behavior *behavior_for(spool_lua *w, const lua_actor *a) {
    const char *base = strrchr(a->script, '/');
    base = base ? base + 1 : a->script;
    size_t len = strlen(base);
    if (len > 4 && strcmp(base + len - 4, ".lua") == 0)
        len -= 4;
    char name[64];
    snprintf(name, sizeof name, "%s:%.*s", a->kind == KIND_MODULE ? "module" : "lua", (int)len,
             base);
    const spool_behavior *found = &lua_actor_behavior;
    pthread_mutex_lock(&w->lock);
    struct named_behavior *b = w->behaviors;
    while (b && strcmp(b->behavior.name, name) != 0)
        b = b->next;
    if (!b && (b = calloc(1, sizeof *b + strlen(name) + 1)) != NULL) {
        b->behavior = lua_actor_behavior;
        b->behavior.name = strcpy((char *)(b + 1), name);
        b->next = w->behaviors;
        w->behaviors = b;
    }
    if (b)
        found = &b->behavior;
    pthread_mutex_unlock(&w->lock);
    return found;
}

void world_service_start(spool_lua *w) {
    if (!spool_node_self(w->rt))
        return; /* not a node (yet): a local-only runtime runs no service */
    pthread_mutex_lock(&w->lock);
    int started = w->service_started;
    w->service_started = 1;
    pthread_mutex_unlock(&w->lock);
    if (started)
        return;
    lua_actor *a = lua_actor_new(w, KIND_MODULE, LUA_SERVICE_NAME, 0);
    if (!a)
        return;
    spool_spawn_opts o = spool_spawn_opts_default();
    o.name = LUA_SERVICE_NAME;
    if (lua_actor_spawn(w, a, &o, NULL) != 0) {
        lua_actor_free(a);
        if (w->config.report_errors)
            fprintf(stderr, "spool: cannot start the Lua service of this node: other nodes "
                            "cannot spawn here\n");
    }
}

int lua_actor_spawn(spool_lua *w, lua_actor *a, const spool_spawn_opts *opts, spool_id *out) {
    pthread_mutex_lock(&w->lock);
    w->frozen = 1; /* no more preloads: an interpreter may be made from now on */
    int service = !w->service_started;
    pthread_mutex_unlock(&w->lock);
    if (service)
        world_service_start(w); /* the first spawn once a node runs */
    spool_spawn_opts o = opts ? *opts : spool_spawn_opts_default();
    o.pinned = 1;
    spool_id id;
    int rc = spool_spawn(w->rt, behavior_for(w, a), a, &o, &id);
    if (rc != 0)
        return rc;
    stat_add(&w->actors, 1);
    /* Nothing else may ever reach it; this makes it start (any first message would). */
    (void)spool_send(w->rt, id, LM_INIT, NULL, 0);
    if (out)
        *out = id;
    return 0;
}

int spool_lua_spawn(spool_lua *w, const char *script, const char *const *args, int argc,
                    int as_main, const spool_spawn_opts *opts, spool_id *out) {
    if (!w || !script || !*script || argc < 0 || (argc > 0 && !args))
        return SPOOL_EINVAL;
    for (int i = 0; i < argc; i++)
        if (!args[i])
            return SPOOL_EINVAL;
    size_t len = strlen(script);
    if ((strchr(script, '/') || (len > 4 && strcmp(script + len - 4, ".lua") == 0)) &&
        access(script, R_OK) != 0)
        return SPOOL_ENOENT;
    lua_actor *a = lua_actor_new(w, KIND_SCRIPT, script, as_main);
    if (!a)
        return SPOOL_ENOMEM;
    a->init_args = encode_args(args, argc, &a->init_args_size);
    if (!a->init_args) {
        lua_actor_free(a);
        return SPOOL_ENOMEM;
    }
    int rc = lua_actor_spawn(w, a, opts, out);
    if (rc != 0)
        lua_actor_free(a);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Running a program                                                                              */

static void nap_ms(int ms) {
    struct timespec ts = {0, (long)ms * 1000000L};
    nanosleep(&ts, NULL);
}

/* No Lua actor waits on a timer or a reply, and no mailbox holds a message. */
static int quiet(spool_lua *w) {
    for (int i = 0; i < w->threads; i++)
        if (__atomic_load_n(&w->per_thread[i].active, __ATOMIC_RELAXED) != 0)
            return 0;
    spool_metrics *m = NULL;
    if (spool_metrics_snapshot(w->rt, &m) != 0)
        return 0;
    int empty = 1;
    for (size_t i = 0; i < m->actor_count && empty; i++)
        if (m->actors[i].depth != 0)
            empty = 0;
    for (size_t i = 0; i < m->thread_count && empty; i++)
        if (m->threads[i].ready != 0)
            empty = 0;
    spool_metrics_destroy(&m);
    return empty;
}

int spool_lua_run(spool_lua *w, const char *script, const char *const *args, int argc, int *status,
                  char *error, size_t error_size) {
    if (error && error_size)
        error[0] = '\0';
    if (status)
        *status = 0;
    if (!w || !script)
        return SPOOL_EINVAL;
    pthread_mutex_lock(&w->lock);
    int taken = w->main != SPOOL_ID_NONE;
    pthread_mutex_unlock(&w->lock);
    if (taken)
        return SPOOL_ESTATE;
    spool_spawn_opts opts = spool_spawn_opts_default();
    opts.thread = 0;
    spool_id id;
    int rc = spool_lua_spawn(w, script, args, argc, 1, &opts, &id);
    if (rc != 0)
        return rc;
    pthread_mutex_lock(&w->lock);
    w->main = id;
    pthread_mutex_unlock(&w->lock);
    rc = spool_runtime_start(w->rt);
    if (rc != 0 && rc != SPOOL_ESTATE)
        return rc;
    pthread_mutex_lock(&w->lock);
    while (!w->main_done)
        pthread_cond_wait(&w->cond, &w->lock);
    int main_status = w->main_status;
    if (error && error_size && w->main_error)
        snprintf(error, error_size, "%s", w->main_error);
    pthread_mutex_unlock(&w->lock);
    /* The other actors: done when nothing waits and nothing is queued, seen twice in a row. */
    for (int calm = 0; calm < 2;) {
        calm = quiet(w) ? calm + 1 : 0;
        nap_ms(2);
    }
    spool_runtime_stop(w->rt, 2000);
    if (status)
        *status = main_status;
    return 0;
}

int spool_lua_stats_get(const spool_lua *w, spool_lua_stats *out) {
    if (!w || !out)
        return SPOOL_EINVAL;
    out->states = __atomic_load_n(&w->states, __ATOMIC_RELAXED);
    out->actors = __atomic_load_n(&w->actors, __ATOMIC_RELAXED);
    out->failed = __atomic_load_n(&w->failed, __ATOMIC_RELAXED);
    out->calls = __atomic_load_n(&w->calls, __ATOMIC_RELAXED);
    out->handles = __atomic_load_n(&w->handles, __ATOMIC_RELAXED);
    out->unhandled = __atomic_load_n(&w->unhandled, __ATOMIC_RELAXED);
    out->memory_bytes = 0;
    for (int i = 0; i < w->threads; i++)
        out->memory_bytes += __atomic_load_n(&w->per_thread[i].memory, __ATOMIC_RELAXED);
    return 0;
}

void spool_lua_destroy(spool_lua **wp) {
    if (!wp || !*wp)
        return;
    spool_lua *w = *wp;
    if (spool_runtime_stop(w->rt, 0) == SPOOL_EDEADLK)
        return; /* from a scheduler thread: refusing beats closing the interpreter we run in */
    __atomic_store_n(&w->closing, 1, __ATOMIC_RELAXED);
    for (int i = 0; i < w->threads; i++) {
        interp_thread *t = &w->per_thread[i];
        if (t->L)
            lua_close(t->L);
        t->L = NULL;
        codec_buffer_free(&t->scratch);
    }
    for (int i = 0; i < w->preload_count; i++)
        free(w->preloads[i].name);
    free(w->preloads);
    for (size_t i = 0; i < sizeof w->exits / sizeof w->exits[0]; i++)
        free(w->exits[i].text);
    while (w->behaviors) {
        struct named_behavior *b = w->behaviors;
        w->behaviors = b->next;
        free(b);
    }
    free(w->main_error);
    free(w->path);
    free(w->cpath);
    free(w->per_thread);
    pthread_mutex_destroy(&w->lock);
    pthread_cond_destroy(&w->cond);
    free(w);
    *wp = NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* ThreadSanitizer builds                                                                         */

#if defined(SPOOL_TSAN)
#include <setjmp.h>
/*
 * Debian's liblua is built with _FORTIFY_SOURCE, so its error and yield jumps call
 * __longjmp_chk, which ThreadSanitizer does not intercept: every yield then leaves the frames it
 * jumped over on TSan's shadow stack, until a long run of calls overflows it (a CHECK failure in
 * sanitizer_stackdepot). This definition, exported from the program, takes those calls instead and
 * goes through longjmp, which GCC's libtsan intercepts and unwinds (it does not intercept
 * _longjmp). liblua's buffers come from _setjmp (no signal mask saved), so longjmp restores none:
 * the same jump, without the check that the target frame is above the current one.
 */
__attribute__((visibility("default"), noreturn)) void __longjmp_chk(jmp_buf env, int value);
__attribute__((visibility("default"), noreturn)) void __longjmp_chk(jmp_buf env, int value) {
    longjmp(env, value);
}
#endif
