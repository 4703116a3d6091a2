/*
 * values.c - how Lua values travel between actors: the header of every Lua message, the codec
 * hooks that turn an actor into a proxy and behaviour into a handle, the handles a home keeps for
 * the proxies elsewhere, and the proxies' reference counts.
 *
 * Reference counting across threads without sharing memory: every count lives at the home, in its
 * interpreter, and changes only by messages to the home (or at the home itself). A proxy owns the
 * references it received; when it is collected it sends them back (LM_RELEASE). A proxy that goes
 * to a third actor first sends LM_RETAIN to the home, then the message: mailboxes are FIFO per
 * sender, so the home sees the retain before this sender's own release, and the count never drops
 * to zero while a reference is on its way. A handle sent to its own home moves no reference
 * (EXT_HANDLE_BORROWED): the sender's proxy outlives the message in its mailbox order.
 */
#include "interp/interp.h"

#include "mailbox/memory.h"

#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* Headers                                                                                        */

static void put_le(char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++)
        p[i] = (char)(v >> (8 * i));
}

static uint64_t get_le(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

size_t lm_header_size(const lm_chain *chain, size_t key_len) {
    return LM_HEADER + (chain ? chain->size : 0) + key_len;
}

void lm_chain_make(spool_runtime *rt, const spool_id *ids, int n, spool_id to, lm_chain *out) {
    out->len = 0;
    out->size = 0;
    out->remote = spool_id_is_remote(to);
    for (int i = 0; i < n; i++) {
        if (!out->remote) {
            put_le(out->bytes + out->size, ids[i], 8);
            out->size += 8;
            out->len++;
            continue;
        }
        spool_remote_id r;
        uint32_t used;
        if (spool_id_export(rt, ids[i], &r) != 0 ||
            (used = codec_remote_id_write(&r, out->bytes + out->size)) == 0)
            continue; /* cannot be said there: that part of the chain is not checked */
        out->size += used;
        out->len++;
    }
}

void lm_header_write(char *out, uint8_t op, const lm_chain *chain, const char *key, size_t key_len,
                     uint64_t handle, uint32_t count) {
    size_t chain_size = chain ? chain->size : 0;
    out[0] = (char)(op | (chain && chain->remote ? LM_REMOTE_CHAIN : 0));
    out[1] = (char)(chain ? chain->len : 0);
    put_le(out + 2, key_len, 2);
    put_le(out + 4, count, 4);
    put_le(out + 8, handle, 8);
    if (chain_size)
        memcpy(out + LM_HEADER, chain->bytes, chain_size);
    if (key_len)
        memcpy(out + LM_HEADER + chain_size, key, key_len);
}

int lm_header_parse(spool_runtime *rt, const void *data, size_t size, lm_header *h) {
    const unsigned char *u = data;
    if (!data || size < LM_HEADER)
        return -1;
    int remote = (u[0] & LM_REMOTE_CHAIN) != 0;
    h->op = u[0] & (uint8_t)~LM_REMOTE_CHAIN;
    h->chain_len = u[1];
    h->key_len = (uint16_t)get_le(u + 2, 2);
    h->count = (uint32_t)get_le(u + 4, 4);
    h->handle = get_le(u + 8, 8);
    if (h->chain_len > LM_CHAIN_MAX || h->op > OP_LOAD)
        return -1;
    size_t at = LM_HEADER;
    int kept = 0;
    for (int i = 0; i < h->chain_len; i++) {
        if (!remote) {
            if (size - at < 8)
                return -1;
            h->chain[kept++] = get_le(u + at, 8);
            at += 8;
            continue;
        }
        spool_remote_id r;
        uint32_t used = 0;
        size_t left = size - at;
        if (!rt ||
            codec_remote_id_read((const char *)u + at,
                                 left > UINT32_MAX ? UINT32_MAX : (uint32_t)left, &r, &used) != 0)
            return -1;
        at += used;
        spool_id id;
        if (spool_id_import(rt, &r, &id) == 0 && id != 0) /* a full node table: left out */
            h->chain[kept++] = id;
    }
    h->chain_len = (uint8_t)kept;
    if (h->key_len > size - at)
        return -1;
    h->key = (const char *)u + at;
    h->values = h->key + h->key_len;
    h->values_size = size - at - h->key_len;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Proxies                                                                                        */

static const char PROXIES_KEY = 'p';  /* registry: weak cache (home, handle) -> proxy */
static const char PROXY_MT_KEY = 'm'; /* registry: the proxy metatable, by address */

/* luaL_testudata without the lookup of the metatable by name (a string key): this runs for every
 * message an actor sends or receives. */
proxy *proxy_test(lua_State *L, int index) {
    void *p = lua_touserdata(L, index);
    if (!p || !lua_getmetatable(L, index))
        return NULL;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &PROXY_MT_KEY);
    int same = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    return same ? p : NULL;
}

/* Pushes the cache key of (home, handle): the id itself for an actor, 16 bytes for a handle. */
static void push_proxy_key(lua_State *L, spool_id home, uint64_t handle) {
    if (handle == 0) {
        lua_pushinteger(L, (lua_Integer)home);
        return;
    }
    char key[16];
    put_le(key, home, 8);
    put_le(key + 8, handle, 8);
    lua_pushlstring(L, key, sizeof key);
}

/* Pushes the proxy of (home, handle), adding `owned` references to it. Raises on memory. */
static proxy *proxy_push(lua_State *L, spool_id home, uint64_t handle, int64_t owned) {
    lua_rawgetp(L, LUA_REGISTRYINDEX, &PROXIES_KEY);
    push_proxy_key(L, home, handle);
    lua_rawget(L, -2);
    proxy *p = proxy_test(L, -1);
    if (p) {
        p->count += owned;
        lua_remove(L, -2);
        return p;
    }
    lua_pop(L, 1);
    p = lua_newuserdatauv(L, sizeof *p, 2); /* 1: stub cache, 2: the proxy it times */
    *p = (proxy){home, handle, owned, 0};
    lua_rawgetp(L, LUA_REGISTRYINDEX, &PROXY_MT_KEY);
    lua_setmetatable(L, -2);
    push_proxy_key(L, home, handle);
    lua_pushvalue(L, -2);
    lua_rawset(L, -4);
    lua_remove(L, -2);
    return p;
}

void proxy_push_actor(lua_State *L, spool_id id) { proxy_push(L, id, 0, 0); }

spool_id values_to_actor(lua_State *L, int index) {
    proxy *p = proxy_test(L, index);
    if (p)
        return p->handle == 0 ? p->home : 0;
    request *r = luaL_testudata(L, index, REQUEST_METATABLE);
    if (r)
        return r->m.from;
    spool_id id;
    if (codec_to_id(L, index, &id))
        return id;
    return 0;
}

/* __gc: give the references back to the home. */
static int proxy_gc(lua_State *L) {
    proxy *p = lua_touserdata(L, 1);
    interp_thread *t = thread_of(L);
    if (p->count > 0 && p->handle != 0 && !__atomic_load_n(&t->world->closing, __ATOMIC_RELAXED)) {
        char buf[LM_HEADER];
        int64_t n = p->count;
        while (n > 0) {
            uint32_t chunk = n > UINT32_MAX ? UINT32_MAX : (uint32_t)n;
            lm_header_write(buf, 0, NULL, NULL, 0, p->handle, chunk);
            /* A home that is gone took its objects with it: nothing to release then. */
            (void)spool_send(t->world->rt, p->home, LM_RELEASE, buf, sizeof buf);
            n -= chunk;
        }
    }
    p->count = 0;
    return 0;
}

static int proxy_tostring(lua_State *L) {
    proxy *p = lua_touserdata(L, 1);
    spool_remote_id r;
    if (spool_id_is_remote(p->home) && spool_id_export(thread_of(L)->world->rt, p->home, &r) ==
                                           0) { /* actor<b:0000000000000003> */
        char local[17];
        snprintf(local, sizeof local, "%016llx", (unsigned long long)r.local);
        if (p->handle == 0)
            lua_pushfstring(L, "actor<%s:%s>", r.node, local);
        else
            lua_pushfstring(L, "handle<%s:%s#%d>", r.node, local, (int)p->handle);
        return 1;
    }
    if (p->handle == 0)
        lua_pushfstring(L, "actor<%s>", id_hex(p->home).s);
    else
        lua_pushfstring(L, "handle<%s#%d>", id_hex(p->home).s, (int)p->handle);
    return 1;
}

/* A stub: calls key on the proxy's object (upvalue 1: the proxy, 2: the key). */
static int stub_call(lua_State *L) {
    proxy *p = lua_touserdata(L, lua_upvalueindex(1));
    size_t len;
    const char *key = lua_tolstring(L, lua_upvalueindex(2), &len);
    return lib_remote_call(L, p->home, OP_INVOKE, p->handle, key, len, 1, p->timeout_ms);
}

/* __index: a field of the remote object. Functions become stubs (cached per proxy); other values
 * are fetched each time (they may change). */
static int proxy_index(lua_State *L) {
    proxy *p = lua_touserdata(L, 1);
    if (lua_type(L, 2) != LUA_TSTRING)
        return luaL_error(L, "a remote object is indexed by strings only (got %s)",
                          luaL_typename(L, 2));
    lua_getiuservalue(L, 1, 1);
    if (lua_istable(L, -1)) {
        lua_pushvalue(L, 2);
        if (lua_rawget(L, -2) != LUA_TNIL)
            return 1;
        lua_pop(L, 2);
    } else {
        lua_pop(L, 1);
    }
    size_t len;
    const char *key = lua_tolstring(L, 2, &len);
    lua_settop(L, 2);
    return lib_remote_call(L, p->home, OP_INDEX, p->handle, key, len, 3, p->timeout_ms);
}

static int proxy_call(lua_State *L) {
    proxy *p = lua_touserdata(L, 1);
    return lib_remote_call(L, p->home, OP_INVOKE, p->handle, "", 0, 2, p->timeout_ms);
}

static int proxy_newindex(lua_State *L) {
    return luaL_error(L, "cannot assign to a field of a remote object (%s): call a function of it",
                      luaL_tolstring(L, 1, NULL));
}

/* What an OP_INDEX answer becomes at the caller: ("f") a stub, cached; ("v", value) the value. */
int values_index_result(lua_State *L, int pi, int ki, int first) {
    const char *kind = lua_tostring(L, first);
    if (!kind || kind[0] != 'f') {
        lua_pushvalue(L, first + 1);
        return 1;
    }
    lua_getiuservalue(L, pi, 1);
    if (!lua_istable(L, -1)) {
        lua_pop(L, 1);
        lua_newtable(L);
        lua_pushvalue(L, -1);
        lua_setiuservalue(L, pi, 1);
    }
    lua_pushvalue(L, ki);
    lua_pushvalue(L, pi);
    lua_pushvalue(L, ki);
    lua_pushcclosure(L, stub_call, 2);
    lua_pushvalue(L, -1);
    lua_insert(L, -4); /* result below the cache table */
    lua_rawset(L, -3);
    lua_pop(L, 1);
    return 1;
}

/* spool.with_timeout(proxy, seconds): the same remote object; its calls give up after seconds. */
int values_with_timeout(lua_State *L) {
    proxy *p = luaL_checkudata(L, 1, PROXY_METATABLE);
    lua_Number s = luaL_checknumber(L, 2);
    luaL_argcheck(L, s > 0 && s < 4.0e6, 2, "seconds must be > 0 and < 4e6");
    proxy *q = lua_newuserdatauv(L, sizeof *q, 2);
    *q = (proxy){p->home, p->handle, 0, (unsigned)(s * 1000.0 + 0.999)};
    if (q->timeout_ms == 0)
        q->timeout_ms = 1;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &PROXY_MT_KEY);
    lua_setmetatable(L, -2);
    lua_pushvalue(L, 1); /* keeps the references of the original alive */
    lua_setiuservalue(L, -2, 2);
    return 1;
}

static int request_tostring(lua_State *L) {
    request *r = lua_touserdata(L, 1);
    lua_pushfstring(L, "request<%d from actor<%s>>", (int)r->m.request_id, id_hex(r->m.from).s);
    return 1;
}

void values_open(lua_State *L) {
    luaL_newmetatable(L, PROXY_METATABLE);
    static const luaL_Reg proxy_meta[] = {
        {"__index", proxy_index}, {"__newindex", proxy_newindex}, {"__call", proxy_call},
        {"__gc", proxy_gc},       {"__tostring", proxy_tostring}, {NULL, NULL}};
    luaL_setfuncs(L, proxy_meta, 0);
    lua_pushliteral(L, "spool.proxy");
    lua_setfield(L, -2, "__name");
    lua_rawsetp(L, LUA_REGISTRYINDEX, &PROXY_MT_KEY);
    luaL_newmetatable(L, REQUEST_METATABLE);
    lua_pushcfunction(L, request_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pop(L, 1);
    lua_newtable(L); /* the proxy cache: weak values */
    lua_newtable(L);
    lua_pushliteral(L, "v");
    lua_setfield(L, -2, "__mode");
    lua_setmetatable(L, -2);
    lua_rawsetp(L, LUA_REGISTRYINDEX, &PROXIES_KEY);
}

/* ---------------------------------------------------------------------------------------------- */
/* Handles at home                                                                                */

/* Pushes the exports table of `a` ({values, counts, ids}), making it on first use. */
static void exports_table(lua_actor *a, lua_State *L) {
    if (a->exports_ref != LUA_NOREF && a->exports_ref != LUA_REFNIL) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, a->exports_ref);
        return;
    }
    lua_createtable(L, 0, 3);
    lua_newtable(L);
    lua_setfield(L, -2, "values");
    lua_newtable(L);
    lua_setfield(L, -2, "counts");
    lua_newtable(L);
    lua_setfield(L, -2, "ids");
    lua_pushvalue(L, -1);
    a->exports_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}

void exports_push(lua_actor *a, lua_State *L, uint64_t handle) {
    if (handle == 0) {
        lua_rawgeti(L, LUA_REGISTRYINDEX, a->root_ref);
        return;
    }
    exports_table(a, L);
    lua_getfield(L, -1, "values");
    lua_rawgeti(L, -1, (lua_Integer)handle);
    lua_replace(L, -3);
    lua_pop(L, 1);
}

/* Exports the value at `index` (one more reference); returns its handle. */
static uint64_t exports_add(lua_actor *a, lua_State *L, int index) {
    index = lua_absindex(L, index);
    exports_table(a, L);
    int ex = lua_gettop(L);
    lua_getfield(L, ex, "ids");
    lua_pushvalue(L, index);
    lua_rawget(L, -2);
    uint64_t h;
    if (lua_isinteger(L, -1)) {
        h = (uint64_t)lua_tointeger(L, -1);
    } else {
        h = ++a->next_handle;
        lua_pushvalue(L, index);
        lua_pushinteger(L, (lua_Integer)h);
        lua_rawset(L, -4);
        lua_getfield(L, ex, "values");
        lua_pushvalue(L, index);
        lua_rawseti(L, -2, (lua_Integer)h);
        lua_pop(L, 1);
        stat_add(&a->world->handles, 1);
    }
    lua_settop(L, ex - 1);
    exports_retain(a, h, 1);
    return h;
}

void exports_retain(lua_actor *a, uint64_t handle, int64_t count) {
    lua_State *L = a->thread->L;
    if (handle == 0 || count <= 0)
        return;
    exports_table(a, L);
    lua_getfield(L, -1, "counts");
    lua_rawgeti(L, -1, (lua_Integer)handle);
    lua_Integer n = lua_tointeger(L, -1) + count;
    lua_pop(L, 1);
    lua_pushinteger(L, n);
    lua_rawseti(L, -2, (lua_Integer)handle);
    lua_pop(L, 2);
}

void exports_release(lua_actor *a, uint64_t handle, int64_t count) {
    lua_State *L = a->thread->L;
    if (handle == 0 || count <= 0)
        return;
    exports_table(a, L);
    int ex = lua_gettop(L);
    lua_getfield(L, ex, "counts");
    lua_rawgeti(L, -1, (lua_Integer)handle);
    if (!lua_isinteger(L, -1)) {
        lua_settop(L, ex - 1); /* already gone */
        return;
    }
    lua_Integer n = lua_tointeger(L, -1) - count;
    lua_pop(L, 1);
    if (n > 0) {
        lua_pushinteger(L, n);
        lua_rawseti(L, -2, (lua_Integer)handle);
        lua_settop(L, ex - 1);
        return;
    }
    /* The last reference anywhere: the home lets go of the object. */
    lua_pushnil(L);
    lua_rawseti(L, -2, (lua_Integer)handle);
    lua_getfield(L, ex, "values");
    lua_rawgeti(L, -1, (lua_Integer)handle);
    lua_getfield(L, ex, "ids");
    lua_pushvalue(L, -2);
    lua_pushnil(L);
    lua_rawset(L, -3);
    lua_pop(L, 2);
    lua_pushnil(L);
    lua_rawseti(L, -2, (lua_Integer)handle);
    lua_settop(L, ex - 1);
    stat_add(&a->world->handles, -1);
}

/* ---------------------------------------------------------------------------------------------- */
/* Codec hooks                                                                                    */

typedef struct encode_ctx {
    interp_thread *t;
    lua_actor *exporter;
    spool_id to;
    int remote;         /* `to` is on another node: ids go out in their node-independent form */
    int overflow;       /* more than MOVED_MAX distinct handles */
    spool_id unsayable; /* an id that has no node-independent form (no node runs here) */
} encode_ctx;

static void put_be(char *p, uint64_t v) {
    for (int i = 0; i < 8; i++)
        p[i] = (char)(v >> (56 - 8 * i));
}

static uint64_t get_be(const char *p) {
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | (unsigned char)p[i];
    return v;
}

/* One more reference of (home, handle) moves with the message being encoded. */
static int note_moved(encode_ctx *e, spool_id home, uint64_t handle) {
    interp_thread *t = e->t;
    for (int i = 0; i < t->moved_count; i++) {
        if (t->moved[i].home == home && t->moved[i].handle == handle) {
            t->moved[i].count++;
            return 0;
        }
    }
    if (t->moved_count == MOVED_MAX) {
        e->overflow = 1;
        return -1;
    }
    t->moved[t->moved_count].home = home;
    t->moved[t->moved_count].handle = handle;
    t->moved[t->moved_count].count = 1;
    t->moved_count++;
    return 0;
}

static int id_export(void *user, spool_id id, spool_remote_id *out) {
    encode_ctx *e = user;
    return spool_id_export(e->t->world->rt, id, out);
}

/* Writes the id of an actor (type 1, or 4 for another node) into the payload. */
static int put_actor(encode_ctx *e, spool_id id, int8_t *type, char *payload, uint32_t *len) {
    if (!e->remote) {
        put_be(payload, id);
        *type = CODEC_EXT_ID;
        *len = 8;
        return 0;
    }
    spool_remote_id r;
    if (id_export(e, id, &r) != 0 || (*len = codec_remote_id_write(&r, payload)) == 0) {
        e->unsayable = id;
        return -1;
    }
    *type = CODEC_EXT_REMOTE_ID;
    return 0;
}

/* Writes a handle: (home, handle) as ext 2/3, or (home's remote form, handle) as ext 5/6. */
static void put_handle(encode_ctx *e, spool_id home, uint64_t handle, int owned, int8_t *type,
                       char *payload, uint32_t *len, int *failed) {
    if (!e->remote) {
        put_be(payload, home);
        put_be(payload + 8, handle);
        *len = 16;
        *type = owned ? EXT_HANDLE_OWNED : EXT_HANDLE_BORROWED;
        return;
    }
    spool_remote_id r;
    uint32_t n = 0;
    if (id_export(e, home, &r) != 0 || (n = codec_remote_id_write(&r, payload)) == 0) {
        e->unsayable = home;
        *failed = 1;
        return;
    }
    put_be(payload + n, handle);
    *len = n + 8;
    *type = owned ? EXT_HANDLE_OWNED_REMOTE : EXT_HANDLE_BORROWED_REMOTE;
}

static int hook_encode(void *user, lua_State *L, int index, int8_t *type,
                       char payload[CODEC_HOOK_PAYLOAD_MAX], uint32_t *len) {
    encode_ctx *e = user;
    int failed = 0;
    proxy *p = proxy_test(L, index);
    if (p) {
        if (p->handle == 0)
            return put_actor(e, p->home, type, payload, len);
        int borrowed = p->home == e->to;
        put_handle(e, p->home, p->handle, !borrowed, type, payload, len, &failed);
        if (failed || borrowed)
            return failed ? -1 : 0;
        return note_moved(e, p->home, p->handle);
    }
    request *r = luaL_testudata(L, index, REQUEST_METATABLE);
    if (r) /* stands for its caller */
        return put_actor(e, r->m.from, type, payload, len);
    if (!e->exporter || lua_type(L, index) == LUA_TTHREAD)
        return -1;
    /* Can its home be said to the receiver? Asked before anything is exported. */
    put_handle(e, e->exporter->id, 0, 1, type, payload, len, &failed);
    if (failed)
        return -1;
    uint64_t h = exports_add(e->exporter, L, index);
    if (note_moved(e, e->exporter->id, h) != 0) {
        exports_release(e->exporter, h, 1);
        return -1;
    }
    put_handle(e, e->exporter->id, h, 1, type, payload, len, &failed);
    return 0;
}

typedef struct decode_ctx {
    lua_actor *self;
    spool_runtime *rt;
} decode_ctx;

static int id_import(void *user, const spool_remote_id *in, spool_id *out) {
    return spool_id_import(((decode_ctx *)user)->rt, in, out);
}

/* The remote form of a handle: an ext 4 payload, then the 8-byte handle. */
static int remote_handle_ok(const char *payload, uint32_t len) {
    uint32_t used = 0;
    return len > 8 && codec_remote_id_read(payload, len - 8, NULL, &used) == 0 && used == len - 8;
}

static int hook_accepts(void *user, int8_t type, const char *payload, uint32_t len) {
    (void)user;
    if (type == EXT_HANDLE_OWNED_REMOTE || type == EXT_HANDLE_BORROWED_REMOTE)
        return remote_handle_ok(payload, len);
    return (type == CODEC_EXT_ID && len == 8) ||
           ((type == EXT_HANDLE_OWNED || type == EXT_HANDLE_BORROWED) && len == 16);
}

static void hook_decode(void *user, lua_State *L, int8_t type, const char *payload, uint32_t len) {
    decode_ctx *d = user;
    if (type == CODEC_EXT_ID) { /* ext 4 comes here too, imported by the codec */
        proxy_push_actor(L, get_be(payload));
        return;
    }
    spool_id home;
    uint64_t handle;
    int owned;
    if (type == EXT_HANDLE_OWNED_REMOTE || type == EXT_HANDLE_BORROWED_REMOTE) {
        spool_remote_id r = {"", 0, 0};
        if (codec_remote_id_read(payload, len - 8, &r, NULL) != 0 ||
            spool_id_import(d->rt, &r, &home) != 0 || home == 0)
            luaL_error(L, "cannot import the home of a handle (node %s)", r.node);
        handle = get_be(payload + len - 8);
        owned = type == EXT_HANDLE_OWNED_REMOTE;
    } else {
        home = get_be(payload);
        handle = get_be(payload + 8);
        owned = type == EXT_HANDLE_OWNED;
    }
    if (d->self && home == d->self->id) {
        exports_push(d->self, L, handle);
        if (owned)
            exports_release(d->self, handle, 1);
        return;
    }
    proxy_push(L, home, handle, owned ? 1 : 0);
}

int values_encode(interp_thread *t, lua_State *L, lua_actor *exporter, spool_id to, int first,
                  int count, size_t front, int label_base, int in_lua) {
    /* The one question a local-only runtime pays for: is `to` on another node? */
    encode_ctx e = {t, exporter, to, spool_id_is_remote(to), 0, 0};
    t->moved_count = 0;
    t->moved_exporter = exporter;
    codec_hooks hooks = {
        hook_encode, hook_accepts, hook_decode, &e, in_lua, e.remote ? id_export : NULL, NULL};
    int rc = codec_encode_values(L, first, count, NULL, &hooks, label_base, front, &t->scratch,
                                 t->err, sizeof t->err);
    if (rc) {
        values_undo(t); /* what was exported for this message goes back */
        if (e.overflow)
            snprintf(t->err, sizeof t->err, "more than %d handles in one message", MOVED_MAX);
        else if (e.unsayable)
            snprintf(t->err, sizeof t->err,
                     "actor<%s> cannot be named to another node (this process is not a node)",
                     id_hex(e.unsayable).s);
        return rc;
    }
    /* The references moving to the receiver: their homes count them before the message leaves
     * (the home's own exports were counted as they were made). */
    for (int i = 0; i < t->moved_count; i++) {
        if (exporter && t->moved[i].home == exporter->id)
            continue;
        char buf[LM_HEADER];
        lm_header_write(buf, 0, NULL, NULL, 0, t->moved[i].handle, t->moved[i].count);
        (void)spool_send(t->world->rt, t->moved[i].home, LM_RETAIN, buf, sizeof buf);
    }
    return 0;
}

void values_undo(interp_thread *t) {
    for (int i = 0; i < t->moved_count; i++) {
        lua_actor *exporter = t->moved_exporter;
        if (exporter && t->moved[i].home == exporter->id) {
            exports_release(exporter, t->moved[i].handle, t->moved[i].count);
            continue;
        }
        char buf[LM_HEADER];
        lm_header_write(buf, 0, NULL, NULL, 0, t->moved[i].handle, t->moved[i].count);
        (void)spool_send(t->world->rt, t->moved[i].home, LM_RELEASE, buf, sizeof buf);
    }
    t->moved_count = 0;
}

int values_decode(interp_thread *t, lua_State *L, lua_actor *self, const char *data, size_t size,
                  int *count, int in_lua) {
    decode_ctx d = {self, t->world->rt};
    codec_hooks hooks = {hook_encode, hook_accepts, hook_decode, &d, in_lua, NULL, id_import};
    return codec_decode_values(L, data, size, NULL, &hooks, count, t->err, sizeof t->err);
}

/* Payloads up to this size are copied into the message; larger ones hand over the buffer. */
#define SEND_COPY_MAX (64u << 10)

int values_send(interp_thread *t, spool_id to, uint32_t type) {
    codec_buffer *b = &t->scratch;
    if (b->size <= SEND_COPY_MAX)
        return spool_send(t->world->rt, to, type, b->data, b->size);
    /* The scratch buffer comes from malloc (memory_default_allocator): free() releases it. */
    int rc = spool_send_owned(t->world->rt, to, type, b->data, b->size, free);
    *b = (codec_buffer){NULL, 0, 0, &memory_default_allocator};
    return rc;
}

int values_reply(interp_thread *t, lua_State *L, lua_actor *a, const spool_message *req, int first,
                 int count) {
    int rc = values_encode(t, L, a, req->from, first, count, 0, 1, 0);
    if (rc) {
        char words[600];
        snprintf(words, sizeof words, "the answer cannot be sent: %s", t->err);
        return values_reply_error(t, L, req, words, "");
    }
    rc = spool_reply(t->world->rt, req, LM_REPLY_OK, t->scratch.data, t->scratch.size);
    if (rc != 0)
        values_undo(t); /* the caller is gone: the handles it would have owned go back */
    return rc;
}

int values_reply_error(interp_thread *t, lua_State *L, const spool_message *req,
                       const char *message, const char *traceback) {
    lua_pushstring(L, message);
    lua_pushstring(L, traceback ? traceback : "");
    int rc = codec_encode_values(L, -2, 2, NULL, NULL, 1, 0, &t->scratch, t->err, sizeof t->err);
    lua_pop(L, 2);
    if (rc)
        return rc;
    return spool_reply(t->world->rt, req, LM_REPLY_ERR, t->scratch.data, t->scratch.size);
}
