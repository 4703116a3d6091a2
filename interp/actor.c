/*
 * actor.c - the behavior of every Lua actor.
 *
 * A Lua actor runs one coroutine at a time in its thread's interpreter:
 *   - a script's body, from its first line: it may loop on spool.receive (a process, Erlang
 *     style), or return a table of functions and become an object;
 *   - an object's call: one coroutine per call, from a small pool, for an object (a script's
 *     table, a pinned module, a handle) served one call at a time.
 * When that coroutine waits (spool.receive, a call, spool.sleep) the thread goes on with other
 * actors; messages that arrive meanwhile are held, in order, and taken when the actor is free
 * again. A call that would wait for itself (A calls B calls A) is answered with an error at once:
 * every call carries the chain of the actors waiting for it.
 */
#include "interp/interp.h"

#include "mailbox/memory.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void handle(spool_ctx *ctx, void *state, const spool_message *m);
static void destroy(void *state);

const spool_behavior lua_actor_behavior = {"lua", handle, destroy};

lua_actor *lua_actor_new(struct spool_lua *w, actor_kind kind, const char *script, int as_main) {
    lua_actor *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->script = strdup(script);
    if (!a->script) {
        free(a);
        return NULL;
    }
    a->world = w;
    a->kind = kind;
    a->as_main = as_main;
    a->co_ref = a->env_ref = a->root_ref = a->exports_ref = LUA_NOREF;
    return a;
}

void lua_actor_free(lua_actor *a) {
    if (!a)
        return;
    free(a->script);
    free(a->init_args);
    free(a->load_error);
    free(a);
}

lua_actor *lua_actor_running(lua_State *L) {
    interp_thread *t = thread_of(L);
    if (!t->current || t->current->co != L)
        luaL_error(L, "spool: this must run in a Lua actor's own coroutine (not in a coroutine it "
                      "made, a metamethod called by C, or a __gc)");
    return t->current;
}

/* ---------------------------------------------------------------------------------------------- */
/* Waiting                                                                                        */

void lua_actor_wait(lua_actor *a, wait_kind wait, int timed) {
    a->wait = wait;
    if (timed && !a->wait_counted) {
        a->wait_counted = 1;
        __atomic_fetch_add(&a->thread->active, 1, __ATOMIC_RELAXED);
    }
}

static void end_wait(lua_actor *a) {
    if (a->timer) {
        spool_timer_cancel(a->world->rt, a->timer);
        a->timer = 0;
    }
    if (a->wait_counted) {
        a->wait_counted = 0;
        __atomic_fetch_sub(&a->thread->active, 1, __ATOMIC_RELAXED);
    }
    a->wait = WAIT_NONE;
    a->wait_token++;
}

/* ---------------------------------------------------------------------------------------------- */
/* Coroutines                                                                                     */

static lua_State *co_take(interp_thread *t, int *ref) {
    if (t->pool_count > 0) {
        t->pool_count--;
        *ref = t->pool_refs[t->pool_count];
        return t->pool[t->pool_count];
    }
    lua_State *co = lua_newthread(t->L);
    *ref = luaL_ref(t->L, LUA_REGISTRYINDEX);
    return co;
}

/* A coroutine that finished: back to the pool if it ended cleanly, else let go. */
static void co_give(interp_thread *t, lua_State *co, int ref, int clean) {
    if (clean && lua_status(co) == LUA_OK && t->pool_count < 16) {
        lua_settop(co, 0);
        t->pool[t->pool_count] = co;
        t->pool_refs[t->pool_count] = ref;
        t->pool_count++;
        return;
    }
    luaL_unref(t->L, LUA_REGISTRYINDEX, ref);
}

static void drop_co(lua_actor *a, int clean) {
    if (!a->co)
        return;
    if (a->co_is_body)
        luaL_unref(a->thread->L, LUA_REGISTRYINDEX, a->co_ref);
    else
        co_give(a->thread, a->co, a->co_ref, clean);
    a->co = NULL;
    a->co_ref = LUA_NOREF;
    a->co_is_body = 0;
    a->serving.request_id = 0;
    a->chain_len = 0;
}

static void stop_self(lua_actor *a, int reason) {
    if (a->ended)
        return;
    a->ended = 1;
    spool_actor_stop(a->world->rt, a->id, reason);
}

/* A string for the error value on top of L (left there). */
static const char *error_text(lua_State *L) {
    if (lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER)
        return lua_tostring(L, -1);
    if (luaL_callmeta(L, -1, "__tostring") && lua_type(L, -1) == LUA_TSTRING) {
        lua_replace(L, -2);
        return lua_tostring(L, -1);
    }
    lua_pushfstring(L, "(an error object of type %s)", luaL_typename(L, -1));
    lua_replace(L, -2);
    return lua_tostring(L, -1);
}

static void pump(lua_actor *a, interp_thread *t);

/* The body finished with `n` results on co. */
static void body_returned(lua_actor *a, interp_thread *t, int n) {
    lua_State *co = a->co;
    if (a->as_main) {
        int status = n > 0 && lua_isinteger(co, -n) ? (int)lua_tointeger(co, -n) : 0;
        world_main_ended(a->world, status, NULL);
        drop_co(a, 0);
        stop_self(a, SPOOL_EXIT_NORMAL);
        return;
    }
    if (n > 0 && lua_istable(co, -n)) {
        /* A table of functions: from now on the actor is that object. */
        lua_pushvalue(co, -n);
        lua_xmove(co, t->L, 1);
        a->root_ref = luaL_ref(t->L, LUA_REGISTRYINDEX);
        drop_co(a, 0);
        return;
    }
    drop_co(a, 0);
    stop_self(a, SPOOL_EXIT_NORMAL);
}

static void module_loaded(lua_actor *a, interp_thread *t, int n) {
    lua_State *co = a->co;
    if (n == 0 || lua_isnil(co, -n) || lua_type(co, -n) == LUA_TBOOLEAN) {
        /* require gave no value: the module is what it left in package.loaded (or true). */
        lua_pushboolean(co, 1);
    } else {
        lua_pushvalue(co, -n);
    }
    lua_xmove(co, t->L, 1);
    a->root_ref = luaL_ref(t->L, LUA_REGISTRYINDEX);
    drop_co(a, 1);
}

/* Resumes the actor's coroutine with `nargs` values pushed on it, and deals with the outcome. */
static void run(lua_actor *a, interp_thread *t, int nargs) {
    int nres = 0;
    lua_State *co = a->co;
    int status = lua_resume(co, t->L, nargs, &nres);
    if (status == LUA_YIELD) {
        lua_pop(co, nres);
        if (a->wait == WAIT_NONE && !a->ended) {
            /* A bare coroutine.yield() in the actor's own coroutine: nothing would resume it. */
            lua_pushliteral(co, "coroutine.yield() in a Lua actor's own coroutine: use spool.sleep "
                                "or spool.receive to wait");
            status = LUA_ERRRUN;
        } else {
            return;
        }
    }
    if (status == LUA_OK) {
        if (a->co_is_body) {
            body_returned(a, t, nres);
        } else if (a->kind == KIND_MODULE && a->root_ref == LUA_NOREF) {
            module_loaded(a, t, nres);
        } else {
            if (a->reply_ready) { /* encoded by serve_k into the thread's scratch buffer */
                a->reply_ready = 0;
                if (spool_reply(a->world->rt, &a->serving, LM_REPLY_OK, t->scratch.data,
                                t->scratch.size) != 0)
                    values_undo(t); /* the caller is gone: its handles go back */
            }
            stat_add(&a->world->calls, 1);
            drop_co(a, 1);
        }
        return;
    }
    const char *msg = error_text(co);
    luaL_traceback(t->L, co, NULL, 0);
    const char *tb = lua_tostring(t->L, -1);
    if (a->co_is_body) {
        char *full = malloc(strlen(msg) + strlen(tb) + 2);
        if (full)
            sprintf(full, "%s\n%s", msg, tb);
        world_actor_failed(a->world, a->id, a->script, full ? full : msg, !a->as_main);
        if (a->as_main)
            world_main_ended(a->world, 1, full ? full : msg);
        free(full);
        lua_pop(t->L, 1);
        drop_co(a, 0);
        stop_self(a, LUA_EXIT_ERROR);
        return;
    }
    if (a->kind == KIND_MODULE && a->root_ref == LUA_NOREF) {
        char *full = malloc(strlen(msg) + strlen(tb) + 2);
        if (full)
            sprintf(full, "%s\n%s", msg, tb);
        a->load_error = full ? full : strdup(msg);
        lua_pop(t->L, 1);
        drop_co(a, 0);
        return;
    }
    if (a->serving.request_id) {
        values_reply_error(t, t->L, &a->serving, msg, tb);
    } else { /* on_message: nobody waits for an answer, so the error is reported here */
        stat_add(&a->world->unhandled, 1);
        if (a->world->config.report_errors)
            fprintf(stderr, "spool: actor<%s> (%s): on_message failed: %s\n%s\n", id_hex(a->id).s,
                    a->script, msg, tb);
    }
    lua_pop(t->L, 1);
    stat_add(&a->world->calls, 1);
    drop_co(a, 0);
}

/* ---------------------------------------------------------------------------------------------- */
/* Starting                                                                                       */

static const char SCRIPTS_KEY = 's'; /* registry: path -> compiled body (function(_ENV, ...)) */
static const char ENV_META_KEY = 'e';

/* Pushes the body of the script at `path`, compiled once per interpreter: the file becomes
 * `function(_ENV, ...) <file> end`, one prototype that every instance shares with globals of its
 * own (the _ENV parameter). Returns 0, or pushes an error message and returns -1. */
static int push_body(lua_State *L, const char *path) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &SCRIPTS_KEY);
    if (lua_getfield(L, -1, path) == LUA_TFUNCTION) {
        lua_remove(L, -2);
        return 0;
    }
    lua_pop(L, 1);
    FILE *f = fopen(path, "rb");
    if (!f) {
        lua_pop(L, 1);
        lua_pushfstring(L, "cannot open script %s", path);
        return -1;
    }
    luaL_Buffer b;
    luaL_buffinit(L, &b);
    luaL_addstring(&b, "return function(_ENV, ...) ");
    char chunk[8192];
    size_t n;
    int first = 1;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0) {
        size_t skip = 0;
        if (first && n > 0 && chunk[0] == '#') { /* #! line: keep the newline, drop the rest */
            while (skip < n && chunk[skip] != '\n')
                skip++;
        }
        first = 0;
        luaL_addlstring(&b, chunk + skip, n - skip);
    }
    fclose(f);
    luaL_addstring(&b, "\nend");
    luaL_pushresult(&b);
    size_t len;
    const char *src = lua_tolstring(L, -1, &len);
    lua_pushfstring(L, "@%s", path);
    int rc = luaL_loadbufferx(L, src, len, lua_tostring(L, -1), "t");
    lua_remove(L, -2);
    lua_remove(L, -2);
    if (rc != LUA_OK) {
        lua_remove(L, -2);
        return -1;
    }
    lua_call(L, 0, 1);
    lua_pushvalue(L, -1);
    lua_setfield(L, -3, path);
    lua_remove(L, -2);
    return 0;
}

/* Finds the script: a path as given, or a name on package.path. Pushes the path or an error. */
static const char PATHS_KEY = 'n'; /* registry: script name -> path found on package.path */

static int push_script_path(lua_State *L, const char *script) {
    size_t len = strlen(script);
    if (strchr(script, '/') || (len > 4 && strcmp(script + len - 4, ".lua") == 0)) {
        lua_pushstring(L, script);
        return 0;
    }
    /* Looked up once per interpreter: package.searchpath opens files, and spawning many actors
     * of one script would otherwise search the disk for each of them. */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &PATHS_KEY);
    if (lua_getfield(L, -1, script) == LUA_TSTRING) {
        lua_remove(L, -2);
        return 0;
    }
    lua_pop(L, 1);
    lua_getglobal(L, "package");
    lua_getfield(L, -1, "searchpath");
    lua_pushstring(L, script);
    lua_getfield(L, -3, "path");
    lua_call(L, 2, 2);
    lua_remove(L, -3);
    if (lua_isstring(L, -2)) {
        lua_pop(L, 1);
        lua_pushvalue(L, -1);
        lua_setfield(L, -3, script);
        lua_remove(L, -2);
        return 0;
    }
    lua_pushfstring(L, "script '%s' not found:%s", script, lua_tostring(L, -1));
    lua_replace(L, -3);
    lua_pop(L, 1);
    lua_remove(L, -2);
    return -1;
}

/* Under lua_pcall on the thread's main state: makes the body coroutine with its arguments. */
static int start_script_protected(lua_State *L) {
    lua_actor *a = lua_touserdata(L, 1);
    interp_thread *t = a->thread;
    if (push_script_path(L, a->script) != 0 || push_body(L, lua_tostring(L, -1)) != 0)
        return lua_error(L);
    /* stack: a, path, body */
    lua_newtable(L); /* env */
    lua_rawgetp(L, LUA_REGISTRYINDEX, &ENV_META_KEY);
    lua_setmetatable(L, -2);
    int nargs = 0;
    if (a->init_args) {
        int base = lua_gettop(L);
        if (values_decode(t, L, a, a->init_args, a->init_args_size, &nargs, 1) != 0)
            return luaL_error(L, "arguments: %s", t->err);
        (void)base;
    }
    if (a->as_main) { /* arg, as the lua command makes it */
        lua_createtable(L, nargs, 1);
        lua_pushvalue(L, 2);
        lua_rawseti(L, -2, 0);
        for (int i = 1; i <= nargs; i++) {
            lua_pushvalue(L, 4 + i);
            lua_rawseti(L, -2, i);
        }
        lua_setfield(L, 4, "arg");
    }
    lua_pushvalue(L, 4);
    a->env_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    lua_State *co = lua_newthread(L);
    a->co_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    a->co = co;
    a->co_is_body = 1;
    lua_xmove(L, co, 2 + nargs); /* body, env, args */
    return 0;
}

int actor_script_path(lua_State *L, const char *script) { return push_script_path(L, script); }

void actor_open(lua_State *L) {
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &SCRIPTS_KEY);
    lua_newtable(L);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &PATHS_KEY);
    /* Every actor's globals fall back to the interpreter's (the standard library), read-only in
     * practice: an assignment creates the actor's own global. */
    lua_createtable(L, 0, 1);
    lua_pushglobaltable(L);
    lua_setfield(L, -2, "__index");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &ENV_META_KEY);
}

static void start(lua_actor *a, interp_thread *t) {
    a->started = 1;
    lua_State *L = t->L;
    if (a->kind == KIND_MODULE) {
        int ref;
        lua_State *co = co_take(t, &ref);
        a->co = co;
        a->co_ref = ref;
        a->co_is_body = 0;
        lua_getglobal(co, "require");
        lua_pushstring(co, a->script);
        run(a, t, 1);
        return;
    }
    lua_pushcfunction(L, start_script_protected);
    lua_pushlightuserdata(L, a);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        world_actor_failed(a->world, a->id, a->script, error_text(L), !a->as_main);
        if (a->as_main)
            world_main_ended(a->world, 1, lua_tostring(L, -1));
        lua_pop(L, 1);
        stop_self(a, LUA_EXIT_ERROR);
        return;
    }
    free(a->init_args);
    a->init_args = NULL;
    run(a, t, lua_gettop(a->co) - 1);
}

/* ---------------------------------------------------------------------------------------------- */
/* Messages                                                                                       */

static void hold(lua_actor *a, const spool_message *m) {
    deferred *d = malloc(sizeof *d + m->size);
    if (!d) {
        spool_dead_letter_report(a->world->rt, SPOOL_DEAD_RECEIVER_STOPPED, a->id, m);
        return;
    }
    d->next = NULL;
    d->m = *m;
    if (m->size)
        memcpy(d->bytes, m->data, m->size);
    d->m.data = d->bytes;
    if (a->held_tail)
        a->held_tail->next = d;
    else
        a->held = d;
    a->held_tail = d;
}

static void unhandled(lua_actor *a, const spool_message *m, const char *why) {
    stat_add(&a->world->unhandled, 1);
    spool_dead_letter_report(a->world->rt, SPOOL_DEAD_NO_RECEIVER, a->id, m);
    if (a->world->config.report_errors)
        fprintf(stderr, "spool: actor %016llx (%s): message of type 0x%x not handled: %s\n",
                (unsigned long long)a->id, a->script, m->type, why);
}

/* Pushes what spool.receive returns for m onto t->L: from, values... Returns the count, or -1
 * (words in t->err). */
static int push_received(lua_actor *a, interp_thread *t, const spool_message *m, lm_header *h) {
    lua_State *L = t->L;
    int base = lua_gettop(L);
    if (m->type == SPOOL_MSG_DOWN && m->size == sizeof(spool_down)) {
        spool_down down;
        memcpy(&down, m->data, sizeof down);
        char words[512];
        world_exit_text(a->world, down.actor, down.reason, words, sizeof words);
        proxy_push_actor(L, down.actor);
        lua_pushliteral(L, "down");
        lua_pushstring(L, words);
        return 3;
    }
    if ((m->type == SPOOL_MSG_NODEUP || m->type == SPOOL_MSG_NODEDOWN) &&
        m->size == sizeof(spool_node_event)) {
        /* spool.monitor_node: (name, "nodeup") or (name, "nodedown", reason) */
        spool_node_event e;
        memcpy(&e, m->data, sizeof e);
        e.node[sizeof e.node - 1] = '\0';
        e.reason[sizeof e.reason - 1] = '\0';
        lua_pushstring(L, e.node);
        if (m->type == SPOOL_MSG_NODEUP) {
            lua_pushliteral(L, "nodeup");
            return 2;
        }
        lua_pushliteral(L, "nodedown");
        lua_pushstring(L, e.reason[0] ? e.reason : "disconnected");
        return 3;
    }
    if (m->type != LM_SEND && m->type != LM_CALL) { /* from C: the type and the bytes */
        proxy_push_actor(L, m->from);
        lua_pushinteger(L, (lua_Integer)m->type);
        lua_pushlstring(L, m->data ? m->data : "", m->size);
        return 3;
    }
    if (m->type == LM_CALL) {
        request *r = lua_newuserdatauv(L, sizeof *r, 0);
        memset(r, 0, sizeof *r);
        r->m.from = m->from;
        r->m.request_id = m->request_id;
        r->chain_len = h->chain_len;
        memcpy(r->chain, h->chain, sizeof(spool_id) * (size_t)h->chain_len);
        luaL_setmetatable(L, REQUEST_METATABLE);
        memcpy(a->chain, h->chain, sizeof(spool_id) * (size_t)h->chain_len);
        a->chain_len = h->chain_len;
    } else {
        proxy_push_actor(L, m->from);
    }
    int n = 0;
    if (values_decode(t, L, a, h->values, h->values_size, &n, 0) != 0) {
        lua_settop(L, base);
        return -1;
    }
    return n + 1;
}

/* spool.receive: the first held message it may take, pushed onto L (running). 0: none. */
int actor_take_held(lua_actor *a, lua_State *L) {
    interp_thread *t = a->thread;
    while (a->held) {
        deferred *d = a->held;
        a->held = d->next;
        if (!a->held)
            a->held_tail = NULL;
        lm_header h;
        int ok = 1;
        if (d->m.type == LM_SEND || d->m.type == LM_CALL)
            ok = lm_header_parse(a->world->rt, d->m.data, d->m.size, &h) == 0;
        if (ok && d->m.type == LM_CALL && h.op != OP_REQUEST) {
            values_reply_error(t, t->L, &d->m,
                               "this actor runs a receive loop: it has no functions to call", "");
            free(d);
            continue;
        }
        int n = ok ? push_received(a, t, &d->m, &h) : -1;
        if (n < 0) {
            unhandled(a, &d->m, ok ? t->err : "malformed header");
            free(d);
            continue;
        }
        free(d);
        lua_xmove(t->L, L, n);
        return n;
    }
    return 0;
}

static void serve(lua_actor *a, interp_thread *t, const spool_message *m, lm_header *h,
                  int on_message);

/* One message for an actor that is free (no coroutine) or waiting in spool.receive. */
static void dispatch(lua_actor *a, interp_thread *t, const spool_message *m) {
    lm_header h;
    int is_lua = m->type == LM_SEND || m->type == LM_CALL;
    if (is_lua && lm_header_parse(a->world->rt, m->data, m->size, &h) != 0) {
        if (m->request_id)
            values_reply_error(t, t->L, m, "malformed request", "");
        else
            unhandled(a, m, "malformed header");
        return;
    }
    if (m->type == LM_CALL) {
        for (int i = 0; i < h.chain_len; i++) {
            if (h.chain[i] == a->id) {
                char words[400];
                int off = snprintf(words, sizeof words, "call cycle: ");
                for (int j = i; j < h.chain_len && off < (int)sizeof words - 60; j++)
                    off += snprintf(words + off, sizeof words - (size_t)off, "actor<%s> -> ",
                                    id_hex(h.chain[j]).s);
                snprintf(words + off, sizeof words - (size_t)off,
                         "actor<%s>, which is waiting for this very call", id_hex(a->id).s);
                values_reply_error(t, t->L, m, words, "");
                return;
            }
        }
        if (a->load_error) {
            values_reply_error(t, t->L, m, a->load_error, "");
            if (h.op == OP_LOAD)
                stop_self(a, LUA_EXIT_ERROR);
            return;
        }
    }
    if (a->co && a->wait != WAIT_RECEIVE) {
        hold(a, m);
        return;
    }
    if (a->co) { /* waiting in spool.receive */
        if (m->type == LM_CALL && h.op != OP_REQUEST) {
            values_reply_error(t, t->L, m,
                               "this actor runs a receive loop: it has no functions to call", "");
            return;
        }
        int n = push_received(a, t, m, &h);
        if (n < 0) {
            unhandled(a, m, t->err);
            return;
        }
        end_wait(a);
        lua_xmove(t->L, a->co, n);
        run(a, t, n);
        return;
    }
    if (a->root_ref == LUA_NOREF) { /* not started or ended */
        if (m->request_id)
            values_reply_error(t, t->L, m, "the actor has ended", "");
        return;
    }
    if (m->type == LM_CALL) {
        if (h.op == OP_LOAD) {
            spool_reply(a->world->rt, m, LM_REPLY_OK, "\x90", 1); /* no values */
            return;
        }
        if (h.op == OP_REQUEST) {
            values_reply_error(t, t->L, m,
                               "this actor is an object: call its functions (actor.name(...)), "
                               "not spool.call",
                               "");
            return;
        }
        serve(a, t, m, &h, 0);
        return;
    }
    serve(a, t, m, is_lua ? &h : NULL, 1);
}

/* Takes held messages while the actor is free. */
static void pump(lua_actor *a, interp_thread *t) {
    while (a->held && !a->ended && (!a->co || a->wait == WAIT_RECEIVE)) {
        deferred *d = a->held;
        a->held = d->next;
        if (!a->held)
            a->held_tail = NULL;
        dispatch(a, t, &d->m);
        free(d);
    }
}

/* The end of an object call, in its coroutine: its results (from 1) become the answer, encoded
 * here under Lua's protection (handles are exported by the actor), sent by run(). */
static int serve_k(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    (void)ctx;
    interp_thread *t = thread_of(L);
    lua_actor *a = t->current;
    if (a->serving.request_id == 0) /* on_message: nobody waits */
        return 0;
    if (values_encode(t, L, a, a->serving.from, 1, lua_gettop(L), 0, 1, 1) != 0)
        return luaL_error(L, "the answer cannot be sent: %s", t->err);
    a->reply_ready = 1;
    return 0;
}

/* The body of an object call, in its own coroutine: (object, op, key); the arguments are read
 * from the request (a->serving_values) here, with no copy through another stack. */
static int serve_body(lua_State *L) {
    interp_thread *t = thread_of(L);
    lua_actor *a = t->current;
    int op = (int)lua_tointeger(L, 2);
    size_t key_len;
    const char *key = lua_tolstring(L, 3, &key_len);
    if (lua_isnil(L, 1))
        return luaL_error(L, "the remote object is gone (its handle was released)");
    if (op == OP_INDEX) {
        lua_settop(L, 3);
        if (lua_type(L, 1) != LUA_TTABLE && lua_type(L, 1) != LUA_TUSERDATA &&
            luaL_getmetafield(L, 1, "__index") == LUA_TNIL)
            return luaL_error(L, "cannot index a remote %s", luaL_typename(L, 1));
        lua_settop(L, 3);
        lua_pushvalue(L, 3);
        lua_gettable(L, 1);
        if (lua_isfunction(L, -1)) {
            lua_settop(L, 0);
            lua_pushliteral(L, "f");
        } else {
            lua_replace(L, 2);
            lua_settop(L, 2);
            lua_pushliteral(L, "v");
            lua_replace(L, 1);
        }
        return serve_k(L, LUA_OK, 0);
    }
    /* OP_INVOKE: the function (object[key], or the object itself), then the arguments. */
    if (key_len > 0) {
        if (lua_type(L, 1) != LUA_TTABLE && lua_type(L, 1) != LUA_TUSERDATA)
            return luaL_error(L, "cannot index a remote %s", luaL_typename(L, 1));
        lua_pushvalue(L, 3);
        lua_gettable(L, 1);
        if (lua_isnil(L, -1))
            return luaL_error(L, "no function '%s' in the remote object", key);
    } else {
        lua_pushvalue(L, 1);
    }
    lua_replace(L, 1);
    lua_settop(L, 1);
    int nargs = 0;
    if (values_decode(t, L, a, a->serving_values, a->serving_size, &nargs, 1) != 0)
        return luaL_error(L, "arguments: %s", t->err);
    lua_callk(L, nargs, LUA_MULTRET, 0, serve_k);
    return serve_k(L, LUA_OK, 0);
}

/* on_message(from, ...): called with what spool.receive would return. */
static int on_message_body(lua_State *L) {
    lua_callk(L, lua_gettop(L) - 1, LUA_MULTRET, 0, serve_k);
    return serve_k(L, LUA_OK, 0);
}

static void serve(lua_actor *a, interp_thread *t, const spool_message *m, lm_header *h,
                  int on_message) {
    int ref;
    lua_State *co = co_take(t, &ref);
    if (on_message) {
        lua_State *L = t->L;
        int base = lua_gettop(L);
        lua_rawgeti(L, LUA_REGISTRYINDEX, a->root_ref);
        if (!lua_istable(L, -1) || lua_getfield(L, -1, "on_message") == LUA_TNIL) {
            lua_settop(L, base);
            co_give(t, co, ref, 1);
            unhandled(a, m, "the object has no on_message function");
            return;
        }
        lua_remove(L, -2);
        lm_header none;
        int n = push_received(a, t, m, h ? h : &none);
        if (n < 0) {
            lua_settop(L, base);
            co_give(t, co, ref, 1);
            unhandled(a, m, t->err);
            return;
        }
        lua_pushcfunction(co, on_message_body);
        lua_xmove(L, co, n + 1);
        a->serving.request_id = 0;
    } else {
        /* Pushed straight onto the fresh coroutine; serve_body reads the arguments itself. */
        lua_pushcfunction(co, serve_body);
        exports_push(a, co, h->handle);
        lua_pushinteger(co, h->op);
        lua_pushlstring(co, h->key, h->key_len);
        a->serving = *m;
        a->serving.data = NULL;
        a->serving.size = 0;
        a->serving_values = h->values; /* valid until this handler (or pump step) returns */
        a->serving_size = h->values_size;
        memcpy(a->chain, h->chain, sizeof(spool_id) * (size_t)h->chain_len);
        a->chain_len = h->chain_len;
    }
    a->co = co;
    a->co_ref = ref;
    a->co_is_body = 0;
    run(a, t, lua_gettop(co) - 1);
}

/* ---------------------------------------------------------------------------------------------- */
/* The handler                                                                                    */

static void enter(lua_actor *a, interp_thread *t, spool_ctx *ctx, spool_ctx **saved_ctx,
                  lua_actor **saved) {
    *saved_ctx = t->ctx;
    *saved = t->current;
    t->ctx = ctx;
    t->current = a;
}

static void leave(interp_thread *t, spool_ctx *saved_ctx, lua_actor *saved) {
    t->ctx = saved_ctx;
    t->current = saved;
}

/* What the handler and the call continuation do, under lua_pcall on the thread's interpreter: a
 * Lua memory error (an interpreter over its memory_limit, or out of memory) anywhere in it ends
 * this actor with an error instead of Lua's panic ending the process. */
typedef struct turn_work {
    lua_actor *a;
    const spool_message *m; /* the message (handler), or the reply (continuation; may be NULL) */
    int answered;           /* 1: the continuation of a call, with `status` */
    int status;
} turn_work;

static void handle_message(lua_actor *a, interp_thread *t, const spool_message *m) {
    if (!a->started)
        start(a, t);
    switch (m->type) {
    case LM_INIT:
        break;
    case LM_RETAIN:
    case LM_RELEASE: {
        lm_header h;
        if (lm_header_parse(a->world->rt, m->data, m->size, &h) == 0) {
            if (m->type == LM_RETAIN)
                exports_retain(a, h.handle, h.count);
            else
                exports_release(a, h.handle, h.count);
        }
        break;
    }
    case LM_WAKE: {
        uint64_t token = 0;
        if (m->size == sizeof token)
            memcpy(&token, m->data, sizeof token);
        if (a->co && token == a->wait_token && (a->wait == WAIT_SLEEP || a->wait == WAIT_RECEIVE)) {
            a->timer = 0; /* fired */
            int receiving = a->wait == WAIT_RECEIVE;
            end_wait(a);
            if (receiving) /* spool.receive timed out: it returns nil */
                lua_pushnil(a->co);
            run(a, t, receiving);
        }
        break;
    }
    default:
        if (!a->ended)
            dispatch(a, t, m);
        break;
    }
}

static int turn_protected(lua_State *L) {
    turn_work *w = lua_touserdata(L, 1);
    lua_actor *a = w->a;
    interp_thread *t = a->thread;
    lua_settop(L, 0);
    if (w->answered) {
        end_wait(a);
        /* The answer is read by the call's continuation (lib.c, call_k) inside the coroutine,
         * which runs within this resume: the reply stays valid until then. */
        a->answer = w->m;
        a->answer_status = w->status;
        run(a, t, 0);
        a->answer = NULL;
    } else {
        handle_message(a, t, w->m);
    }
    pump(a, t);
    return 0;
}

static void turn(lua_actor *a, spool_ctx *ctx, turn_work *w) {
    interp_thread *t = a->thread;
    spool_ctx *saved_ctx;
    lua_actor *saved;
    enter(a, t, ctx, &saved_ctx, &saved);
    lua_State *L = t->L;
    int top = lua_gettop(L);
    lua_pushcfunction(L, turn_protected);
    lua_pushlightuserdata(L, w);
    if (lua_pcall(L, 1, 0, 0) != LUA_OK) {
        char words[600];
        snprintf(words, sizeof words, "the interpreter failed outside the actor's code: %s",
                 lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
        world_actor_failed(a->world, a->id, a->script, words, !a->as_main);
        if (a->as_main)
            world_main_ended(a->world, 1, words);
        stop_self(a, LUA_EXIT_ERROR);
    }
    lua_settop(L, top);
    leave(t, saved_ctx, saved);
}

static void handle(spool_ctx *ctx, void *state, const spool_message *m) {
    lua_actor *a = state;
    if (a->ended)
        return;
    if (!a->thread) {
        a->id = spool_self(ctx);
        a->thread = world_thread(a->world, spool_ctx_thread(ctx));
        if (!a->thread) {
            world_actor_failed(a->world, a->id, a->script, "no Lua interpreter on its thread", 1);
            if (a->as_main)
                world_main_ended(a->world, 1, "no Lua interpreter on its thread");
            stop_self(a, LUA_EXIT_ERROR);
            return;
        }
    }
    turn_work w = {a, m, 0, 0};
    turn(a, ctx, &w);
}

/* The continuation of a call made by lib_remote_call: the answer resumes the coroutine. */
void actor_call_answered(spool_ctx *ctx, void *state, int status, const spool_message *reply,
                         void *arg) {
    lua_actor *a = state;
    (void)arg;
    if (a->ended || !a->co || a->wait != WAIT_CALL)
        return;
    turn_work w = {a, reply, 1, status};
    turn(a, ctx, &w);
}

static void destroy(void *state) {
    lua_actor *a = state;
    interp_thread *t = a->thread;
    while (a->held) {
        deferred *d = a->held;
        a->held = d->next;
        /* Requests among them are answered by the runtime (the actor owed them a reply). */
        if (!d->m.request_id && a->world->rt)
            spool_dead_letter_report(a->world->rt, SPOOL_DEAD_RECEIVER_STOPPED, a->id, &d->m);
        free(d);
    }
    if (t && t->L) {
        if (a->wait_counted)
            __atomic_fetch_sub(&t->active, 1, __ATOMIC_RELAXED);
        if (a->co)
            luaL_unref(t->L, LUA_REGISTRYINDEX, a->co_ref);
        luaL_unref(t->L, LUA_REGISTRYINDEX, a->env_ref);
        luaL_unref(t->L, LUA_REGISTRYINDEX, a->root_ref);
        if (a->exports_ref != LUA_NOREF) {
            lua_rawgeti(t->L, LUA_REGISTRYINDEX, a->exports_ref);
            lua_getfield(t->L, -1, "values");
            lua_Integer n = 0;
            lua_pushnil(t->L);
            while (lua_next(t->L, -2)) {
                n++;
                lua_pop(t->L, 1);
            }
            lua_pop(t->L, 2);
            stat_add(&a->world->handles, -n);
            luaL_unref(t->L, LUA_REGISTRYINDEX, a->exports_ref);
        }
    }
    if (a->as_main)
        world_main_ended(a->world, 1, "the main actor was stopped");
    stat_add(&a->world->actors, -1);
    lua_actor_free(a);
}
