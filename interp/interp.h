/*
 * interp.h - inside the Lua layer: one interpreter per scheduler thread, Lua actors, proxies.
 *
 * The pieces:
 *   world.c    spool_lua: the interpreters of one runtime, made lazily on their threads; the
 *              C API (spawn, run, stats); reports of failed actors.
 *   actor.c    the behavior every Lua actor runs: a coroutine per actor (a process, looping on
 *              spool.receive) or an object (a table of functions, a module) served one call at a
 *              time; what waits for what, and the messages kept aside meanwhile.
 *   values.c   the wire: message headers, the codec hooks that turn behaviour into handles and
 *              actors into proxies, handles kept at home, proxies elsewhere.
 *   lib.c      the `spool` table scripts see.
 *
 * Everything here runs on the home thread of the interpreter it touches, except the counters
 * marked atomic. A Lua actor never moves (spawned pinned): its coroutine belongs to its thread.
 */
#ifndef SPOOL_INTERP_H
#define SPOOL_INTERP_H

#include "spool_lua.h"

#include "interp/codec.h"

#include <lua.h>
#include <pthread.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------------- */
/* Messages between Lua actors (spool_message.type)                                               */

enum {
    LM_INIT = 0x4c750000u, /* start the actor (runs its script / loads its module) */
    LM_SEND,               /* spool.send: header + values */
    LM_CALL,               /* a request: header (op, handle, key, chain) + values */
    LM_RETAIN,             /* header: handle, count in `count`; no values */
    LM_RELEASE,            /* the same, the other way */
    LM_WAKE,               /* a timer of the actor itself: payload = the wait token */
    LM_REPLY_OK,           /* values */
    LM_REPLY_ERR,          /* values: message, traceback */
};

/* What a LM_CALL asks. */
enum {
    OP_REQUEST = 0, /* spool.call(actor, ...): spool.receive gets it with a request to answer */
    OP_INDEX,       /* handle.key */
    OP_INVOKE,      /* handle.key(...), or handle(...) when the key is empty */
    OP_LOAD,        /* spool.module: is the module loaded? */
};

/* The fixed part of a header; then the chain, the key, the values. Little-endian on every
 * machine (the bytes are the ones a node sends). The chain is `chain_len` ids of 8 bytes, or, when
 * the op byte has LM_REMOTE_CHAIN (a call to another node), `chain_len` node-independent ids in
 * the form of codec.h's ext 4 payload (imported by the receiver: a cycle across nodes is seen). */
#define LM_HEADER 16
#define LM_CHAIN_MAX 15
#define LM_REMOTE_CHAIN 0x80
#define MOVED_MAX 64 /* handles that one message may move */

typedef struct lm_header {
    uint8_t op;
    uint8_t chain_len;
    uint16_t key_len;
    uint32_t count; /* LM_RETAIN / LM_RELEASE */
    uint64_t handle;
    spool_id chain[LM_CHAIN_MAX];
    const char *key;
    const char *values; /* MessagePack array */
    size_t values_size;
} lm_header;

/* A chain ready to be written for one receiver. */
typedef struct lm_chain {
    int len;
    int remote; /* the entries are node-independent (LM_REMOTE_CHAIN) */
    size_t size;
    char bytes[LM_CHAIN_MAX * CODEC_REMOTE_ID_MAX];
} lm_chain;

/* Prepares `n` chain ids for a call to `to` (for another node: their node-independent form; an id
 * that cannot be said there is left out). */
void lm_chain_make(spool_runtime *rt, const spool_id *ids, int n, spool_id to, lm_chain *out);
/* Parses a payload (rt: imports a remote chain); -1 when it is malformed. */
int lm_header_parse(spool_runtime *rt, const void *data, size_t size, lm_header *out);
/* Bytes of a header with this chain (NULL: none) and key. */
size_t lm_header_size(const lm_chain *chain, size_t key_len);
/* Writes one into `out` (lm_header_size bytes). */
void lm_header_write(char *out, uint8_t op, const lm_chain *chain, const char *key, size_t key_len,
                     uint64_t handle, uint32_t count);

/* Exit reason of an actor ended by a Lua error (its text: world_exit_text). Negative like the
 * runtime's own reasons: user code keeps every reason >= 0 (spool.exit(1) is "exit 1"). */
#define LUA_EXIT_ERROR (-100)

/* The ext types of the Lua layer (type 1, the id of an actor, is the codec's). */
#define EXT_HANDLE_OWNED 2    /* home id, handle: the receiver owns one reference */
#define EXT_HANDLE_BORROWED 3 /* sent to the home itself: no reference moves */
/* The same for a receiver on another node: the home as ext 4's payload (codec.h), then the
 * 8-byte handle, big-endian (24..86 bytes). Ids themselves go as ext 4 then. */
#define EXT_HANDLE_OWNED_REMOTE 5
#define EXT_HANDLE_BORROWED_REMOTE 6

/* ---------------------------------------------------------------------------------------------- */
/* Threads and the world                                                                          */

struct lua_actor;

typedef struct interp_thread {
    struct spool_lua *world;
    int index;
    lua_State *L;              /* made on first use, on this thread */
    size_t memory;             /* bytes held by L (atomic: read by stats) */
    codec_buffer scratch;      /* the encode buffer, reused */
    spool_ctx *ctx;            /* the running actor's context, while one runs */
    struct lua_actor *current; /* the running Lua actor */
    int64_t active;            /* atomic: Lua actors here waiting on a timer or a reply */
    struct moved {             /* references moving with the last encoded message */
        spool_id home;
        uint64_t handle;
        uint32_t count;
    } moved[MOVED_MAX];
    int moved_count;
    struct lua_actor *moved_exporter;
    lua_State *pool[16]; /* finished coroutines, reused for object calls */
    int pool_refs[16];
    int pool_count;
    char err[512];
} __attribute__((aligned(64))) interp_thread;

struct spool_lua {
    spool_runtime *rt;
    int threads;
    interp_thread *per_thread;
    spool_lua_config config;
    char *path, *cpath;
    struct preload {
        char *name;
        spool_lua_open_fn open;
    } * preloads;
    int preload_count;
    int frozen;          /* lock: a Lua actor was spawned, preloads are closed */
    int service_started; /* lock: the node's Lua service was spawned (world_service_start) */

    pthread_mutex_t lock; /* guards what follows */
    pthread_cond_t cond;
    spool_id main;
    int main_done;
    int main_status;
    char *main_error;
    struct exit_text {
        spool_id id;
        char *text;
    } exits[64]; /* the last failures' words, for the monitors */
    int exit_next;
    struct named_behavior { /* behaviors named after their scripts (world.c) */
        struct named_behavior *next;
        spool_behavior behavior;
    } * behaviors;

    /* atomic counters */
    uint64_t states, actors, failed, calls, handles, unhandled;
    int closing;
};

/* This thread's part of the world (lazily making its interpreter); NULL when it cannot. */
interp_thread *world_thread(struct spool_lua *w, int index);
/* The interp_thread of an interpreter (from any of its coroutines). */
static inline interp_thread *thread_of(lua_State *L) {
    return *(interp_thread **)lua_getextraspace(L);
}
/* Counts, reports (stderr when configured and `report`) and remembers why an actor failed. The
 * main actor's failure is not reported here: spool_lua_run hands it to its caller. */
void world_actor_failed(struct spool_lua *w, spool_id id, const char *what, const char *text,
                        int report);
/* Words for an exit reason: "normal", "noproc", "shutdown", "noconnection", the error's text
 * (of an actor of this process), "exit N". */
void world_exit_text(struct spool_lua *w, spool_id id, int reason, char *out, size_t size);
/* The main actor ended: status and error (may be NULL). */
void world_main_ended(struct spool_lua *w, int status, const char *error);

/* An id as 16 hex digits, the way every message of the Lua layer shows it: actor<...>. */
typedef struct id_text {
    char s[17];
} id_text;
static inline id_text id_hex(spool_id id) {
    id_text t;
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++)
        t.s[i] = digits[(id >> (60 - 4 * i)) & 15];
    t.s[16] = '\0';
    return t;
}

static inline void stat_add(uint64_t *counter, int64_t delta) {
    __atomic_fetch_add(counter, (uint64_t)delta, __ATOMIC_RELAXED);
}

/* ---------------------------------------------------------------------------------------------- */
/* Lua actors                                                                                     */

typedef enum { WAIT_NONE = 0, WAIT_RECEIVE, WAIT_CALL, WAIT_SLEEP } wait_kind;
typedef enum { KIND_SCRIPT = 0, KIND_MODULE } actor_kind;

/* A message kept aside while the actor is busy. */
typedef struct deferred {
    struct deferred *next;
    spool_message m; /* m.data points into bytes[] */
    unsigned char bytes[];
} deferred;

typedef struct lua_actor {
    struct spool_lua *world;
    interp_thread *thread; /* home */
    spool_id id;
    actor_kind kind;
    char *script;    /* script path or name, or the module's name */
    char *init_args; /* encoded arguments for the script, until it starts */
    size_t init_args_size;
    int as_main;
    int started;
    char *load_error; /* a module that failed to load: its error, answered to every call */

    lua_State *co; /* the running or suspended coroutine (process body or object call) */
    int co_ref;
    int co_is_body;  /* co is the script's body (else: an object call) */
    int env_ref;     /* the actor's globals */
    int root_ref;    /* the object it serves (LUA_NOREF: none yet) */
    int exports_ref; /* handles: {values = {}, counts = {}, ids = {}} */
    uint64_t next_handle;

    wait_kind wait;
    int wait_counted; /* counted in thread->active */
    uint64_t wait_token;
    spool_timer timer;
    const spool_message *answer; /* the reply being read by call_k (valid during that resume) */
    int answer_status;           /* 0, or why there is no reply (SPOOL_ETIMEDOUT, ...) */
    int reply_ready;             /* serve_k encoded the answer into the thread's scratch */

    spool_message serving;      /* the request an object call answers (request_id 0: none) */
    const char *serving_values; /* its arguments (MessagePack), read by serve_body */
    size_t serving_size;
    int serving_op;
    spool_id chain[LM_CHAIN_MAX]; /* who waits, transitively, for what this actor does now */
    int chain_len;

    deferred *held, *held_tail;
    unsigned call_timeout_ms; /* spool.set_timeout: default for its calls (0: none) */
    spool_id call_to;         /* the actor its call waits for */
    int ended;                /* stopped itself: the handler's return ends it */
} lua_actor;

extern const spool_behavior lua_actor_behavior;

/* Sets up the registry tables of actors in a new interpreter (scripts cache, globals). */
void actor_open(lua_State *L);
/* Pushes the path of a script (a path as given, or a name on package.path): 0; or pushes an
 * error message: -1. */
int actor_script_path(lua_State *L, const char *script);
/* Spawns a prepared Lua actor (pinned) and makes it start; on error `a` is still the caller's. */
int lua_actor_spawn(struct spool_lua *w, lua_actor *a, const spool_spawn_opts *opts, spool_id *out);

/* Makes the state of a new Lua actor (not yet spawned). */
lua_actor *lua_actor_new(struct spool_lua *w, actor_kind kind, const char *script, int as_main);
void lua_actor_free(lua_actor *a);

/* The Lua actor running on this interpreter's thread now (error if none). */
lua_actor *lua_actor_running(lua_State *L);

/* Inside the actor's coroutine: suspend it for `wait` (receive, call, sleep). Counts the wait as
 * active when `timed`. */
void lua_actor_wait(lua_actor *a, wait_kind wait, int timed);

/* ---------------------------------------------------------------------------------------------- */
/* Values: headers, hooks, handles, proxies (values.c)                                            */

/* The proxy userdata: an actor (handle 0) or a home object (handle > 0). */
typedef struct proxy {
    spool_id home;
    uint64_t handle;
    int64_t count;       /* references this interpreter owns at the home (released at __gc) */
    unsigned timeout_ms; /* 0: the calling actor's default */
} proxy;

#define PROXY_METATABLE "spool.proxy"
#define REQUEST_METATABLE "spool.request"

/* A request received by spool.receive, to answer with spool.reply. */
typedef struct request {
    spool_message m; /* from, request_id */
    spool_id chain[LM_CHAIN_MAX];
    int chain_len;
    int answered;
} request;

/* Sets up the metatables and caches of a new interpreter. */
void values_open(lua_State *L);

/* Pushes the proxy of an actor (cached: one userdata per actor per interpreter). */
void proxy_push_actor(lua_State *L, spool_id id);
/* The proxy at `index`, or NULL. */
proxy *proxy_test(lua_State *L, int index);
/* An actor id from a proxy of an actor, a request (its caller) or an id userdata; 0 if none. */
spool_id values_to_actor(lua_State *L, int index);

/*
 * Encodes values [first, first+count) for `to` into the thread's scratch buffer, after a header
 * of `front` bytes. `exporter`: the actor that exports behaviour as handles (NULL: behaviour is
 * refused). Handles moving to another actor are retained at their homes before this returns.
 * 0, or an error with the words in t->err.
 */
int values_encode(interp_thread *t, lua_State *L, lua_actor *exporter, spool_id to, int first,
                  int count, size_t front, int label_base, int in_lua);
/* The last encoded message was not sent: the references it moved go back to their homes. */
void values_undo(interp_thread *t);

/* Decodes values for `self` (handles of its own come back as the objects). Pushes them; count.
 * in_lua (both): the caller runs under Lua's protection (a C function called by Lua), so the codec
 * skips its own lua_pcall. */
int values_decode(interp_thread *t, lua_State *L, lua_actor *self, const char *data, size_t size,
                  int *count, int in_lua);
/* Sends the scratch buffer (size bytes) as a message of `type` to `to`. */
int values_send(interp_thread *t, spool_id to, uint32_t type);

/* Home side of handles. */
void exports_retain(lua_actor *a, uint64_t handle, int64_t count);
void exports_release(lua_actor *a, uint64_t handle, int64_t count);
/* Pushes the object of a handle of `a` (handle 0: its root); nil if gone. */
void exports_push(lua_actor *a, lua_State *L, uint64_t handle);

/* Replies to a request with the values on top of L (`count` of them) or an error. */
int values_reply(interp_thread *t, lua_State *L, lua_actor *a, const spool_message *request,
                 int first, int count);
int values_reply_error(interp_thread *t, lua_State *L, const spool_message *request,
                       const char *message, const char *traceback);
/* An OP_INDEX answer (kind, value) at `first` for the proxy at pi, key at ki: pushes the result. */
int values_index_result(lua_State *L, int pi, int ki, int first);
/* spool.with_timeout(proxy, seconds) */
int values_with_timeout(lua_State *L);

/* actor.c, for lib.c: the first held message spool.receive may take, pushed onto L; 0 if none. */
int actor_take_held(lua_actor *a, lua_State *L);
/* The continuation of every call a Lua actor makes (spool_call). */
void actor_call_answered(spool_ctx *ctx, void *state, int status, const spool_message *reply,
                         void *arg);

/* ---------------------------------------------------------------------------------------------- */
/* The library (lib.c)                                                                            */

int luaopen_spool(lua_State *L);

/* The Lua service every node's Lua layer runs: a module actor registered under this name, which
 * another node's spool.spawn(script, {node = ...}) and spool.module(name, {node = ...}) ask. */
#define LUA_SERVICE_NAME "spool.service"
int luaopen_spool_service(lua_State *L);
/* world.c: starts the service once this runtime is a node (no-op before, and after the first). */
void world_service_start(struct spool_lua *w);

/*
 * From a proxy or a stub: sends a LM_CALL (op, handle, key) with the values [first, top] to `home`
 * and yields the running actor until the answer; returns what the answer holds (raises its error).
 */
int lib_remote_call(lua_State *L, spool_id home, int op, uint64_t handle, const char *key,
                    size_t key_len, int first, unsigned timeout_ms);

#endif
