/*
 * lib.c - the `spool` table every script sees (require "spool"). See docs/lua.md for the whole
 * API with examples. Functions that wait (receive, call, sleep, and every use of a proxy) yield
 * only the calling actor's coroutine; the thread goes on with the others.
 */
#include "interp/interp.h"

#include <lauxlib.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* How long a question to another node's Lua (whereis, spawn, module) waits when the actor set no
 * timeout of its own: a reply lost with its connection would otherwise be waited for forever. */
#define LIB_NODE_TIMEOUT_MS 60000u

static interp_thread *here(lua_State *L) { return thread_of(L); }

/* The Lua actor running now (any coroutine of it), or an error. */
static lua_actor *current(lua_State *L) {
    interp_thread *t = here(L);
    if (!t->current)
        luaL_error(L, "spool: no Lua actor is running here");
    return t->current;
}

static spool_id check_actor(lua_State *L, int index) {
    spool_id id = values_to_actor(L, index);
    if (id == SPOOL_ID_NONE)
        luaL_argerror(L, index,
                      lua_pushfstring(L, "an actor expected, got %s", luaL_typename(L, index)));
    return id;
}

static unsigned seconds_to_ms(lua_State *L, int index) {
    lua_Number s = luaL_checknumber(L, index);
    luaL_argcheck(L, s >= 0 && s < 4.0e6, index, "seconds must be >= 0 and < 4e6");
    return (unsigned)ceil(s * 1000.0);
}

/* ---------------------------------------------------------------------------------------------- */
/* Calls                                                                                          */

/* The continuation of every call: reads the answer (a->answer, valid during this resume) onto the
 * caller's stack, or raises what went wrong. */
static int call_k(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    interp_thread *t = here(L);
    lua_actor *a = t->current;
    int base = (int)(ctx >> 4);
    int op = (int)(ctx & 15);
    lua_settop(L, base);
    if (a->answer_status == SPOOL_ETIMEDOUT)
        return luaL_error(L, "timeout: actor<%s> did not answer in time", id_hex(a->call_to).s);
    if (a->answer_status != 0 || !a->answer)
        return luaL_error(L, "actor<%s> ended before answering (%s)", id_hex(a->call_to).s,
                          spool_strerror(a->answer_status));
    const spool_message *reply = a->answer;
    int n = 0;
    if (values_decode(t, L, a, reply->data, reply->size, &n, 1) != 0)
        return luaL_error(L, "the answer cannot be read: %s", t->err);
    if (reply->type == LM_REPLY_ERR) {
        const char *msg = n > 0 ? lua_tostring(L, base + 1) : NULL;
        const char *tb = n > 1 ? lua_tostring(L, base + 2) : NULL;
        if (tb && *tb)
            lua_pushfstring(L, "%s\n[remote, actor<%s>] %s", msg ? msg : "error",
                            id_hex(reply->from).s, tb);
        else
            lua_pushstring(L, msg ? msg : "error");
        return lua_error(L);
    }
    if (op == OP_INDEX)
        return values_index_result(L, 1, 2, base + 1);
    return n;
}

int lib_remote_call(lua_State *L, spool_id home, int op, uint64_t handle, const char *key,
                    size_t key_len, int first, unsigned timeout_ms) {
    lua_actor *a = lua_actor_running(L);
    interp_thread *t = a->thread;
    if (!lua_isyieldable(L))
        return luaL_error(L, "spool: cannot wait for a call here (a C function such as "
                             "table.sort is between the actor and this call)");
    if (key_len > UINT16_MAX)
        return luaL_error(L, "spool: name of %d bytes is too long", (int)key_len);
    int top = lua_gettop(L);
    int count = top >= first ? top - first + 1 : 0;
    spool_id chain[LM_CHAIN_MAX];
    int n = a->chain_len;
    memcpy(chain, a->chain, sizeof(spool_id) * (size_t)n);
    if (n == LM_CHAIN_MAX) { /* keep the nearest waiters */
        memmove(chain, chain + 1, sizeof(spool_id) * (size_t)(n - 1));
        n--;
    }
    chain[n++] = a->id;
    lm_chain c;
    lm_chain_make(t->world->rt, chain, n, home, &c);
    size_t front = lm_header_size(&c, key_len);
    if (values_encode(t, L, NULL, home, first, count, front, first, 1) != 0)
        return luaL_error(L, "spool: %s", t->err);
    lm_header_write(t->scratch.data, (uint8_t)op, &c, key, key_len, handle, 0);
    unsigned tmo = timeout_ms ? timeout_ms : a->call_timeout_ms;
    int rc = spool_call(t->ctx, home, LM_CALL, t->scratch.data, t->scratch.size, tmo,
                        actor_call_answered, NULL);
    if (rc != 0)
        values_undo(t);
    if (rc != 0)
        return luaL_error(L, "spool: call to actor<%s> failed: %s", id_hex(home).s,
                          spool_strerror(rc));
    a->call_to = home;
    lua_actor_wait(a, WAIT_CALL, 1);
    return lua_yieldk(L, 0, ((lua_KContext)top << 4) | op, call_k);
}

/* spool.call(actor, ...): a request that spool.receive gets; returns what spool.reply sends. */
static int l_call(lua_State *L) {
    spool_id id = check_actor(L, 1);
    proxy *p = proxy_test(L, 1);
    return lib_remote_call(L, id, OP_REQUEST, 0, "", 0, 2, p ? p->timeout_ms : 0);
}

/* spool.reply(from, ...): answers a request from spool.receive, or sends to an actor. */
static int l_send(lua_State *L);
static int l_reply(lua_State *L) {
    request *r = luaL_testudata(L, 1, REQUEST_METATABLE);
    if (!r)
        return l_send(L);
    if (r->answered)
        return luaL_error(L, "spool.reply: this request was answered already");
    interp_thread *t = here(L);
    r->answered = 1;
    int rc = values_encode(t, L, NULL, r->m.from, 2, lua_gettop(L) - 1, 0, 2, 1);
    if (rc != 0) {
        char words[600];
        snprintf(words, sizeof words, "the answer cannot be sent: %s", t->err);
        values_reply_error(t, L, &r->m, words, "");
        return luaL_error(L, "spool.reply: %s", t->err);
    }
    rc = spool_reply(t->world->rt, &r->m, LM_REPLY_OK, t->scratch.data, t->scratch.size);
    if (rc != 0)
        values_undo(t);
    if (t->current)
        t->current->chain_len = 0;
    lua_pushboolean(L, rc == 0);
    if (rc != 0) {
        lua_pushstring(L, spool_strerror(rc));
        return 2;
    }
    return 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Messages                                                                                       */

/* spool.send(actor, ...): true, or false and why (the message is then a counted dead letter). */
static int l_send(lua_State *L) {
    spool_id id = check_actor(L, 1);
    interp_thread *t = here(L);
    if (values_encode(t, L, NULL, id, 2, lua_gettop(L) - 1, LM_HEADER, 2, 1) != 0)
        return luaL_error(L, "spool.send: %s", t->err);
    lm_header_write(t->scratch.data, OP_REQUEST, NULL, NULL, 0, 0, 0);
    int rc = values_send(t, id, LM_SEND);
    if (rc != 0)
        values_undo(t);
    lua_pushboolean(L, rc == 0);
    if (rc != 0) {
        lua_pushstring(L, spool_strerror(rc));
        return 2;
    }
    return 1;
}

/* spool.receive([seconds]): from, values... (nil on timeout; seconds 0 = do not wait). */
static int l_receive(lua_State *L) {
    lua_actor *a = lua_actor_running(L);
    int timed = !lua_isnoneornil(L, 1);
    unsigned ms = timed ? seconds_to_ms(L, 1) : 0;
    lua_settop(L, 0);
    if (!lua_isyieldable(L))
        return luaL_error(L, "spool.receive: cannot wait here (a C function such as table.sort "
                             "is between the actor and this call)");
    int n = actor_take_held(a, L);
    if (n > 0)
        return n;
    lua_actor_wait(a, WAIT_RECEIVE, timed);
    if (timed && ms == 0) {
        /* A poll: what is in the mailbox now comes before this wake-up (FIFO), so the poll sees
         * every message that arrived before it, and nil if there was none. A notice to itself: a
         * bounded mailbox neither refuses it nor drops a message for it. */
        uint64_t token = a->wait_token;
        int rc = spool_send_self(here(L)->ctx, LM_WAKE, &token, sizeof token);
        if (rc != 0)
            return luaL_error(L, "spool.receive: %s", spool_strerror(rc));
    } else if (timed) {
        uint64_t token = a->wait_token;
        int rc =
            spool_send_after(a->world->rt, a->id, ms, LM_WAKE, &token, sizeof token, &a->timer);
        if (rc != 0)
            return luaL_error(L, "spool.receive: %s", spool_strerror(rc));
    }
    return lua_yield(L, 0);
}

/* spool.sleep(seconds): this actor only. */
static int l_sleep(lua_State *L) {
    lua_actor *a = lua_actor_running(L);
    unsigned ms = seconds_to_ms(L, 1);
    if (!lua_isyieldable(L))
        return luaL_error(L, "spool.sleep: cannot wait here (a C function such as table.sort is "
                             "between the actor and this call)");
    lua_actor_wait(a, WAIT_SLEEP, 1);
    uint64_t token = a->wait_token;
    int rc = spool_send_after(a->world->rt, a->id, ms, LM_WAKE, &token, sizeof token, &a->timer);
    if (rc != 0)
        return luaL_error(L, "spool.sleep: %s", spool_strerror(rc));
    return lua_yield(L, 0);
}

/* ---------------------------------------------------------------------------------------------- */
/* Actors                                                                                         */

static void opts_from_table(lua_State *L, int index, spool_spawn_opts *o) {
    if (lua_isnoneornil(L, index))
        return;
    luaL_checktype(L, index, LUA_TTABLE);
    if (lua_getfield(L, index, "thread") != LUA_TNIL) {
        if (!lua_isinteger(L, -1))
            luaL_error(L, "opts.thread must be an integer");
        o->thread = (int)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, index, "name") != LUA_TNIL)
        o->name = luaL_checkstring(L, -1); /* kept alive by the table */
    lua_pop(L, 1);
    if (lua_getfield(L, index, "placement") != LUA_TNIL)
        o->placement = luaL_checkstring(L, -1);
    lua_pop(L, 1);
    if (lua_getfield(L, index, "near") != LUA_TNIL)
        o->near = check_actor(L, lua_gettop(L));
    lua_pop(L, 1);
    if (lua_getfield(L, index, "mailbox") != LUA_TNIL) {
        if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0)
            luaL_error(L, "opts.mailbox must be an integer >= 0");
        o->mailbox_capacity = (size_t)lua_tointeger(L, -1);
    }
    lua_pop(L, 1);
    if (lua_getfield(L, index, "overflow") != LUA_TNIL) {
        const char *s = luaL_checkstring(L, -1);
        if (strcmp(s, "reject") == 0)
            o->overflow = SPOOL_OVERFLOW_REJECT;
        else if (strcmp(s, "drop_oldest") == 0)
            o->overflow = SPOOL_OVERFLOW_DROP_OLDEST;
        else
            luaL_error(L, "opts.overflow must be \"reject\" or \"drop_oldest\"");
    }
    lua_pop(L, 1);
}

static int spawn_error(lua_State *L, int rc, const spool_spawn_opts *o) {
    if (rc == SPOOL_EEXIST)
        return luaL_error(L, "spool.spawn: the name '%s' is taken", o->name ? o->name : "?");
    return luaL_error(L, "spool.spawn: %s", spool_strerror(rc));
}

/* spool.spawn(script, opts, ...): a new actor running script (found on package.path). */
static int l_spawn(lua_State *L) {
    const char *script = luaL_checkstring(L, 1);
    interp_thread *t = here(L);
    spool_spawn_opts o = spool_spawn_opts_default();
    opts_from_table(L, 2, &o);
    if (actor_script_path(L, script) != 0)
        return luaL_error(L, "spool.spawn: %s", lua_tostring(L, -1));
    const char *path = lua_tostring(L, -1);
    int top = lua_gettop(L) - 1; /* the path is not an argument */
    lua_actor *a = lua_actor_new(t->world, KIND_SCRIPT, path, 0);
    if (!a)
        return luaL_error(L, "spool.spawn: out of memory");
    lua_pop(L, 1);
    (void)top;
    int nargs = lua_gettop(L) > 2 ? lua_gettop(L) - 2 : 0;
    if (values_encode(t, L, NULL, 0, 3, nargs, 0, 3, 1) != 0) {
        lua_actor_free(a);
        return luaL_error(L, "spool.spawn: %s", t->err);
    }
    a->init_args = malloc(t->scratch.size);
    if (!a->init_args) {
        lua_actor_free(a);
        return luaL_error(L, "spool.spawn: out of memory");
    }
    memcpy(a->init_args, t->scratch.data, t->scratch.size);
    a->init_args_size = t->scratch.size;
    spool_id id;
    int rc = lua_actor_spawn(t->world, a, &o, &id);
    if (rc != 0) {
        values_undo(t); /* handles among the arguments go back */
        lua_actor_free(a);
        return spawn_error(L, rc, &o);
    }
    proxy_push_actor(L, id);
    return 1;
}

/* (internal) module_actor(name, opts): the module's actor, found or spawned; its thread. */
static int l_module_actor(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    interp_thread *t = here(L);
    spool_runtime *rt = t->world->rt;
    spool_id id;
    for (int attempt = 0; attempt < 3; attempt++) {
        if (spool_whereis(rt, name, &id) == 0)
            break;
        spool_spawn_opts o = spool_spawn_opts_default();
        opts_from_table(L, 2, &o);
        o.name = name;
        lua_actor *a = lua_actor_new(t->world, KIND_MODULE, name, 0);
        if (!a)
            return luaL_error(L, "spool.module: out of memory");
        int rc = lua_actor_spawn(t->world, a, &o, &id);
        if (rc == 0)
            break;
        lua_actor_free(a);
        if (rc != SPOOL_EEXIST) /* EEXIST: another actor pinned it meanwhile: find it */
            return luaL_error(L, "spool.module('%s'): %s", name, spool_strerror(rc));
        id = SPOOL_ID_NONE;
    }
    if (id == SPOOL_ID_NONE)
        return luaL_error(L, "spool.module('%s'): cannot find or start it", name);
    int thread = -1;
    spool_actor_thread(rt, id, &thread);
    proxy_push_actor(L, id);
    lua_pushinteger(L, thread);
    return 2;
}

/* (internal) load(proxy): waits until the module is loaded; raises its loading error. */
static int l_load(lua_State *L) {
    spool_id id = check_actor(L, 1);
    lua_settop(L, 1);
    return lib_remote_call(L, id, OP_LOAD, 0, "", 0, 2, 0);
}

static int l_self(lua_State *L) {
    proxy_push_actor(L, current(L)->id);
    return 1;
}

static int l_thread(lua_State *L) {
    lua_pushinteger(L, here(L)->index);
    return 1;
}

static int l_threads(lua_State *L) {
    lua_pushinteger(L, here(L)->world->threads);
    return 1;
}

/* spool.thread_of(actor): its home thread, or nil if it is gone. */
static int l_thread_of(lua_State *L) {
    spool_id id = check_actor(L, 1);
    int thread;
    if (spool_actor_thread(here(L)->world->rt, id, &thread) != 0) {
        lua_pushnil(L);
        return 1;
    }
    lua_pushinteger(L, thread);
    return 1;
}

static int l_monitor(lua_State *L) {
    spool_id id = check_actor(L, 1);
    current(L);
    int rc = spool_monitor(here(L)->ctx, id);
    if (rc != 0)
        return luaL_error(L, "spool.monitor: %s", spool_strerror(rc));
    lua_pushboolean(L, 1);
    return 1;
}

static int l_register(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    spool_id id = lua_isnoneornil(L, 2) ? current(L)->id : check_actor(L, 2);
    int rc = spool_register(here(L)->world->rt, name, id);
    lua_pushboolean(L, rc == 0);
    if (rc != 0) {
        spool_id holder;
        if (rc == SPOOL_EEXIST && spool_whereis(here(L)->world->rt, name, &holder) == 0)
            lua_pushliteral(L, "name taken");
        else if (rc == SPOOL_EEXIST) /* an actor has one name at most */
            lua_pushliteral(L, "the actor has a name already");
        else
            lua_pushstring(L, spool_strerror(rc));
        return 2;
    }
    return 1;
}

static int l_unregister(lua_State *L) {
    int rc = spool_unregister(here(L)->world->rt, luaL_checkstring(L, 1));
    lua_pushboolean(L, rc == 0);
    return 1;
}

/* The answer of a whereis on another node (spool_node_whereis), read in the coroutine. */
static int whereis_k(lua_State *L, int status, lua_KContext ctx) {
    (void)status;
    lua_actor *a = here(L)->current;
    lua_settop(L, (int)ctx);
    const spool_message *m = a->answer;
    if (a->answer_status == 0 && m && m->size == sizeof(spool_id)) {
        spool_id id;
        memcpy(&id, m->data, sizeof id);
        proxy_push_actor(L, id);
        return 1;
    }
    lua_pushnil(L);
    if (a->answer_status == 0 || a->answer_status == SPOOL_ENOENT)
        lua_pushliteral(L, "not registered there");
    else if (a->answer_status == SPOOL_ETIMEDOUT)
        lua_pushliteral(L, "timeout");
    else
        lua_pushstring(L, spool_strerror(a->answer_status));
    return 2;
}

/* spool.whereis(name[, node]): the actor registered as name here, or on node (asked there: the
 * actor waits like a call). nil (and why, for a node) when there is none. */
static int l_whereis(lua_State *L) {
    const char *name = luaL_checkstring(L, 1);
    const char *node = luaL_optstring(L, 2, NULL);
    interp_thread *t = here(L);
    spool_runtime *rt = t->world->rt;
    const char *self = spool_node_self(rt);
    spool_id id;
    if (!node || (self && strcmp(node, self) == 0)) {
        if (spool_whereis(rt, name, &id) != 0) {
            lua_pushnil(L);
            return 1;
        }
        proxy_push_actor(L, id);
        return 1;
    }
    if (!self) {
        lua_pushnil(L);
        lua_pushliteral(L, "this process is not a node");
        return 2;
    }
    lua_actor *a = lua_actor_running(L);
    if (!lua_isyieldable(L))
        return luaL_error(L,
                          "spool.whereis: cannot wait for node %s here (a C function such as "
                          "table.sort is between the actor and this call)",
                          node);
    unsigned tmo = a->call_timeout_ms ? a->call_timeout_ms : LIB_NODE_TIMEOUT_MS;
    int rc = spool_node_whereis(t->ctx, node, name, tmo, actor_call_answered, NULL);
    if (rc != 0) {
        lua_pushnil(L);
        if (rc == SPOOL_ENOENT)
            lua_pushfstring(L, "node %s is not up", node);
        else if (rc == SPOOL_EINVAL)
            lua_pushfstring(L, "bad node name or actor name");
        else
            lua_pushstring(L, spool_strerror(rc));
        return 2;
    }
    a->call_to = 0;
    lua_actor_wait(a, WAIT_CALL, 1);
    return lua_yieldk(L, 0, (lua_KContext)lua_gettop(L), whereis_k);
}

/* ---------------------------------------------------------------------------------------------- */
/* Nodes                                                                                          */

/* spool.node(): this node's name, or nil when the process is not a node. */
static int l_node(lua_State *L) {
    const char *self = spool_node_self(here(L)->world->rt);
    if (self)
        lua_pushstring(L, self);
    else
        lua_pushnil(L);
    return 1;
}

static int compare_names(const void *a, const void *b) { return strcmp(a, b); }

/* spool.nodes(): the names of the other nodes up now, sorted ({} when not a node). */
static int l_nodes(lua_State *L) {
    spool_runtime *rt = here(L)->world->rt;
    size_t capacity = 16, count = 0;
    for (;;) {
        char(*names)[SPOOL_NODE_NAME_MAX + 1] =
            lua_newuserdatauv(L, capacity * sizeof *names, 0); /* freed by the GC on an error */
        int rc = spool_node_members(rt, names, capacity, &count);
        if (rc == SPOOL_ESTATE) {
            lua_newtable(L);
            return 1;
        }
        if (rc != 0)
            return luaL_error(L, "spool.nodes: %s", spool_strerror(rc));
        if (count > capacity) {
            lua_pop(L, 1);
            capacity = count + 8;
            continue;
        }
        qsort(names, count, sizeof *names, compare_names);
        lua_createtable(L, (int)count, 0);
        for (size_t i = 0; i < count; i++) {
            lua_pushstring(L, names[i]);
            lua_rawseti(L, -2, (lua_Integer)i + 1);
        }
        return 1;
    }
}

/* spool.monitor_node(name or "*"[, false]): nodeup / nodedown notices for the running actor. */
static int l_monitor_node(lua_State *L) {
    const char *node = luaL_checkstring(L, 1);
    int on = lua_isnoneornil(L, 2) ? 1 : lua_toboolean(L, 2);
    current(L);
    int rc = spool_node_monitor(here(L)->ctx, node, on);
    if (rc == SPOOL_ESTATE)
        return luaL_error(L, "spool.monitor_node: this process is not a node (spool run --node "
                             "NAME)");
    if (rc == SPOOL_EINVAL)
        return luaL_error(L, "spool.monitor_node: '%s' is not a node name", node);
    if (rc != 0)
        return luaL_error(L, "spool.monitor_node: %s", spool_strerror(rc));
    lua_pushboolean(L, 1);
    return 1;
}

static int exit_reason(lua_State *L, int index) {
    if (lua_isnoneornil(L, index))
        return SPOOL_EXIT_NORMAL;
    if (lua_type(L, index) == LUA_TSTRING && strcmp(lua_tostring(L, index), "normal") == 0)
        return SPOOL_EXIT_NORMAL;
    lua_Integer r = luaL_checkinteger(L, index);
    luaL_argcheck(L, r >= 0 && r <= INT32_MAX, index, "reason must be \"normal\" or >= 0");
    return (int)r;
}

/* spool.exit([reason]): ends the running actor now. */
static int l_exit(lua_State *L) {
    lua_actor *a = lua_actor_running(L);
    int reason = exit_reason(L, 1);
    if (!lua_isyieldable(L)) /* checked first: an exit that cannot happen must not half happen */
        return luaL_error(L, "spool.exit: cannot end the actor here (a C function such as "
                             "table.sort is between the actor and this call)");
    if (a->as_main)
        world_main_ended(a->world, reason, NULL);
    a->ended = 1;
    spool_actor_stop(a->world->rt, a->id, reason);
    return lua_yield(L, 0); /* never resumed: the actor ends when its handler returns */
}

/* spool.stop(actor[, reason]): asks another actor to stop (after what it has queued). */
static int l_stop(lua_State *L) {
    spool_id id = check_actor(L, 1);
    interp_thread *t = here(L);
    if (t->current && id == t->current->id) {
        lua_remove(L, 1);
        return l_exit(L);
    }
    int rc = spool_actor_stop(t->world->rt, id, exit_reason(L, 2));
    lua_pushboolean(L, rc == 0);
    return 1;
}

/* spool.now(): seconds on the monotonic clock (for measuring; os.clock is CPU time). */
static int l_now(lua_State *L) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    lua_pushnumber(L, (lua_Number)ts.tv_sec + (lua_Number)ts.tv_nsec * 1e-9);
    return 1;
}

static int l_set_timeout(lua_State *L) {
    lua_actor *a = current(L);
    a->call_timeout_ms = lua_isnoneornil(L, 1) ? 0 : seconds_to_ms(L, 1);
    return 0;
}

static int l_id(lua_State *L) {
    lua_pushinteger(L, (lua_Integer)check_actor(L, 1));
    return 1;
}

static int l_actor(lua_State *L) {
    lua_Integer id = luaL_checkinteger(L, 1);
    luaL_argcheck(L, id != 0, 1, "0 is no actor");
    proxy_push_actor(L, (spool_id)id);
    return 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Metrics                                                                                        */

static void set_num(lua_State *L, const char *k, double v) {
    lua_pushnumber(L, v);
    lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, uint64_t v) {
    lua_pushinteger(L, (lua_Integer)v);
    lua_setfield(L, -2, k);
}

static void push_histogram(lua_State *L, const spool_histogram *h) {
    lua_createtable(L, 0, 5);
    set_int(L, "count", h->count);
    set_num(L, "sum_seconds", h->sum_seconds);
    set_num(L, "p50", spool_histogram_quantile(h, 0.5));
    set_num(L, "p90", spool_histogram_quantile(h, 0.9));
    set_num(L, "p99", spool_histogram_quantile(h, 0.99));
}

static void push_actor_metrics(lua_State *L, const spool_actor_metrics *m) {
    lua_createtable(L, 0, 14);
    proxy_push_actor(L, m->id);
    lua_setfield(L, -2, "actor");
    lua_pushstring(L, m->name);
    lua_setfield(L, -2, "name");
    lua_pushstring(L, m->behavior);
    lua_setfield(L, -2, "behavior");
    set_int(L, "thread", (uint64_t)m->thread);
    set_int(L, "depth", m->depth);
    set_int(L, "high_water", m->high_water);
    set_int(L, "enqueued", m->enqueued);
    set_int(L, "dequeued", m->dequeued);
    set_int(L, "rejected", m->rejected);
    set_int(L, "dropped", m->dropped);
    set_int(L, "handled", m->handled);
    push_histogram(L, &m->wait);
    lua_setfield(L, -2, "wait");
    push_histogram(L, &m->processing);
    lua_setfield(L, -2, "processing");
}

/* metrics.nodes: {[name] = {...}} for every peer this node knows; nothing when not a node. */
static void push_node_metrics(lua_State *L, spool_runtime *rt) {
    size_t capacity = 8, count = 0;
    spool_node_peer *peers = NULL;
    for (;;) {
        peers = lua_newuserdatauv(L, capacity * sizeof *peers, 0);
        if (spool_node_peers(rt, peers, capacity, &count) != 0) {
            lua_pop(L, 1);
            return;
        }
        if (count <= capacity)
            break;
        lua_pop(L, 1);
        capacity = count + 8;
    }
    lua_createtable(L, 0, (int)count);
    for (size_t i = 0; i < count; i++) {
        const spool_node_peer *p = &peers[i];
        lua_createtable(L, 0, 16);
        lua_pushstring(L, p->state ? p->state : "?");
        lua_setfield(L, -2, "state");
        lua_pushstring(L, p->endpoint);
        lua_setfield(L, -2, "endpoint");
        char incarnation[24];
        snprintf(incarnation, sizeof incarnation, "%016llx", (unsigned long long)p->incarnation);
        lua_pushstring(L, incarnation);
        lua_setfield(L, -2, "incarnation");
        set_int(L, "messages_in", p->messages_in);
        set_int(L, "messages_out", p->messages_out);
        set_int(L, "bytes_in", p->bytes_in);
        set_int(L, "bytes_out", p->bytes_out);
        set_int(L, "queued_messages", p->queued_messages);
        set_int(L, "queued_bytes", p->queued_bytes);
        set_num(L, "rtt_ms", (double)p->rtt_ns / 1e6);
        set_int(L, "heartbeats_missed", p->heartbeats_missed);
        set_int(L, "ups", p->ups);
        set_int(L, "downs", p->downs);
        lua_createtable(L, 0, SPOOL_DEAD_REASON_COUNT);
        for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++)
            set_int(L, spool_dead_reason_name((spool_dead_reason)r), p->dead_letters[r]);
        lua_setfield(L, -2, "dead_letters");
        lua_setfield(L, -2, p->node);
    }
    lua_setfield(L, -3, "nodes");
    lua_pop(L, 1); /* the peers' block */
}

/* spool.metrics([actor]): a snapshot of the runtime (or of one actor: nil if gone). */
static int l_metrics(lua_State *L) {
    interp_thread *t = here(L);
    spool_id only = lua_isnoneornil(L, 1) ? 0 : check_actor(L, 1);
    spool_metrics *m = NULL;
    int rc = spool_metrics_snapshot(t->world->rt, &m);
    if (rc != 0)
        return luaL_error(L, "spool.metrics: %s", spool_strerror(rc));
    if (only) {
        int found = 0;
        for (size_t i = 0; i < m->actor_count && !found; i++) {
            if (m->actors[i].id == only) {
                push_actor_metrics(L, &m->actors[i]);
                found = 1;
            }
        }
        spool_metrics_destroy(&m);
        if (!found)
            lua_pushnil(L);
        return 1;
    }
    lua_createtable(L, 0, 7);
    set_num(L, "uptime_seconds", m->uptime_seconds);
    set_int(L, "sample_every", m->sample_every);
    lua_pushboolean(L, m->enabled);
    lua_setfield(L, -2, "enabled");
    lua_createtable(L, (int)m->thread_count, 0);
    for (size_t i = 0; i < m->thread_count; i++) {
        const spool_thread_metrics *th = &m->threads[i];
        lua_createtable(L, 0, 7);
        set_int(L, "thread", (uint64_t)th->thread);
        lua_pushinteger(L, th->cpu);
        lua_setfield(L, -2, "cpu");
        set_num(L, "busy_seconds", th->busy_seconds);
        set_int(L, "messages", th->messages);
        set_int(L, "wakeups", th->wakeups);
        set_int(L, "actors", th->actors);
        set_int(L, "ready", th->ready);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "threads");
    lua_createtable(L, (int)m->actor_count, 0);
    for (size_t i = 0; i < m->actor_count; i++) {
        push_actor_metrics(L, &m->actors[i]);
        lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    lua_setfield(L, -2, "actors");
    lua_createtable(L, 0, SPOOL_DEAD_REASON_COUNT);
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++)
        set_int(L, spool_dead_reason_name((spool_dead_reason)r), m->dead_letters[r]);
    lua_setfield(L, -2, "dead_letters");
    spool_lua_stats s;
    spool_lua_stats_get(t->world, &s);
    lua_createtable(L, 0, 7);
    set_int(L, "states", s.states);
    set_int(L, "actors", s.actors);
    set_int(L, "failed", s.failed);
    set_int(L, "calls", s.calls);
    set_int(L, "handles", s.handles);
    set_int(L, "unhandled", s.unhandled);
    set_int(L, "memory_bytes", s.memory_bytes);
    lua_setfield(L, -2, "lua");
    spool_metrics_destroy(&m);
    push_node_metrics(L, t->world->rt);
    return 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* The table                                                                                      */

/*
 * spool.module and spool.spawn, in Lua: one module cache per interpreter over the primitives
 * above, and what goes to another node: a question to its Lua service (SERVICE_LUA), found there
 * by its registered name, which answers with the new actor or the pinned module (their ids come
 * back in their node-independent form: ext 4).
 */
static const char MODULE_LUA[] =
    "local spool, module_actor, load, spawn_here, service_name = ...\n"
    "local modules = {}\n"
    "local function elsewhere(opts, what)\n"
    "  local node = type(opts) == 'table' and opts.node\n"
    "  if node == nil or node == false then return nil end\n"
    "  if type(node) ~= 'string' then error(what .. ': opts.node must be a node name', 3) end\n"
    "  if node == spool.node() then return nil end\n"
    "  local rest = {}\n"
    "  for k, v in pairs(opts) do if k ~= 'node' then rest[k] = v end end\n"
    "  return node, rest\n"
    "end\n"
    "local function service(node, what)\n"
    "  local s, why = spool.whereis(service_name, node)\n"
    "  if not s then\n"
    "    error(('%s: cannot ask node %s (%s)'):format(what, node, why or 'no Lua service'), 3)\n"
    "  end\n"
    "  return spool.with_timeout(s, 60)\n"
    "end\n"
    "local function spawn(script, opts, ...)\n"
    "  local node, rest = elsewhere(opts, 'spool.spawn')\n"
    "  if not node then return spawn_here(script, opts, ...) end\n"
    "  if type(script) ~= 'string' then\n"
    "    error('spool.spawn: a script name expected, got ' .. type(script), 2)\n"
    "  end\n"
    "  local ok, id = pcall(service(node, 'spool.spawn').spawn, script, rest, ...)\n"
    "  if not ok then error(('spool.spawn on node %s: %s'):format(node, id), 2) end\n"
    "  return id\n"
    "end\n"
    "local function module(name, opts)\n"
    "  if type(name) ~= 'string' then\n"
    "    error(\"spool.module: a module name expected, got \" .. type(name), 2)\n"
    "  end\n"
    "  if opts ~= nil and type(opts) ~= 'table' then\n"
    "    error('spool.module: opts must be a table', 2)\n"
    "  end\n"
    "  local want = opts and opts.thread\n"
    "  local node, rest = elsewhere(opts, 'spool.module')\n"
    "  if node then\n"
    "    local key = node .. '\\0' .. name\n"
    "    local entry = modules[key]\n"
    "    if not entry then\n"
    "      local ok, m, thread = pcall(service(node, 'spool.module').module, name, rest)\n"
    "      if not ok then error(('spool.module(%q) on node %s: %s'):format(name, node, m), 2) end\n"
    "      entry = {m, thread}\n"
    "      modules[key] = entry\n"
    "    elseif want ~= nil and entry[2] ~= want then\n"
    "      error(('spool.module: %s is already pinned on thread %s of node %s'):format(name,\n"
    "            tostring(entry[2]), node), 2)\n"
    "    end\n"
    "    return entry[1]\n"
    "  end\n"
    "  local m = modules[name]\n"
    "  if not m then\n"
    "    local thread\n"
    "    m, thread = module_actor(name, opts)\n"
    "    if want ~= nil and thread ~= want then\n"
    "      error(('spool.module: %s is already pinned on thread %d'):format(name, thread), 2)\n"
    "    end\n"
    "    local ok, err = pcall(load, m)\n"
    "    if not ok then error(('spool.module(%q): %s'):format(name, err), 2) end\n"
    "    modules[name] = m\n"
    "  elseif want ~= nil and spool.thread_of(m) ~= want then\n"
    "    error(('spool.module: %s is already pinned on thread %s'):format(name,\n"
    "          tostring(spool.thread_of(m))), 2)\n"
    "  end\n"
    "  return m\n"
    "end\n"
    "return module, spawn\n";

/* The Lua service of a node (require "spool.service" in its module actor, registered as
 * LUA_SERVICE_NAME): what another node's spool.spawn and spool.module ask for. */
static const char SERVICE_LUA[] =
    "local spool = require 'spool'\n"
    "return {\n"
    "  spawn = function(script, opts, ...) return spool.spawn(script, opts, ...) end,\n"
    "  module = function(name, opts)\n"
    "    local m = spool.module(name, opts)\n"
    "    return m, spool.thread_of(m)\n"
    "  end,\n"
    "}\n";

int luaopen_spool_service(lua_State *L) {
    if (luaL_loadbuffer(L, SERVICE_LUA, sizeof SERVICE_LUA - 1, "=spool.service") != LUA_OK)
        return lua_error(L);
    lua_call(L, 0, 1);
    return 1;
}

int luaopen_spool(lua_State *L) {
    static const luaL_Reg funcs[] = {{"spawn", l_spawn},
                                     {"send", l_send},
                                     {"receive", l_receive},
                                     {"call", l_call},
                                     {"reply", l_reply},
                                     {"sleep", l_sleep},
                                     {"self", l_self},
                                     {"thread", l_thread},
                                     {"threads", l_threads},
                                     {"thread_of", l_thread_of},
                                     {"monitor", l_monitor},
                                     {"register", l_register},
                                     {"unregister", l_unregister},
                                     {"whereis", l_whereis},
                                     {"exit", l_exit},
                                     {"stop", l_stop},
                                     {"set_timeout", l_set_timeout},
                                     {"with_timeout", values_with_timeout},
                                     {"id", l_id},
                                     {"actor", l_actor},
                                     {"metrics", l_metrics},
                                     {"now", l_now},
                                     {"node", l_node},
                                     {"nodes", l_nodes},
                                     {"monitor_node", l_monitor_node},
                                     {NULL, NULL}};
    luaL_newlib(L, funcs);
    if (luaL_loadbuffer(L, MODULE_LUA, sizeof MODULE_LUA - 1, "=spool.module") != LUA_OK)
        return lua_error(L);
    lua_pushvalue(L, -2);
    lua_pushcfunction(L, l_module_actor);
    lua_pushcfunction(L, l_load);
    lua_pushcfunction(L, l_spawn);
    lua_pushliteral(L, LUA_SERVICE_NAME);
    lua_call(L, 5, 2);
    lua_setfield(L, -3, "spawn");
    lua_setfield(L, -2, "module");
    return 1;
}
