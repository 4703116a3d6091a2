/*
 * remote.h - the runtime's side of nodes: the table of the other nodes this process has heard of,
 * the route a message to one of their actors takes, what arrives from them, monitors across a
 * connection and node monitors. The node layer (nodes/node.c) attaches itself with remote_attach
 * and reports what its net thread sees; the core never touches a socket.
 *
 * The node table. An id's node field (16 bits) is 0 for this process, else the index of an entry
 * {name, incarnation}: one per life of a node, made when that life is first met (its session
 * comes UP) or first named (spool_id_import of an id inside a message). Entries are never reused
 * or freed before the runtime, so an index stays valid and means one life of one node: when a node
 * restarts, every entry of its earlier lives becomes STALE and refuses sends with
 * SPOOL_DEAD_STALE_INCARNATION. States: NEW (named, never UP: unknown_node), UP, DOWN (was UP:
 * node_down), STALE. The table is an array of pointers published with release stores; an entry's
 * name, incarnation and peer never change once published, its state is atomic.
 *
 * On the wire an id is its 48-bit local part and the session names the node; `to` 0 is the node
 * actor (the receiving node's, which answers whereis) and `from` 0 a sender outside the runtime
 * (a blocking spool_call_wait), whose replies come back to `to` 0 and complete the waiting call.
 */
#ifndef SPOOL_ACTORS_REMOTE_H
#define SPOOL_ACTORS_REMOTE_H

#include "spool.h"

#include <stddef.h>
#include <stdint.h>

#define REMOTE_MAX_NODES 4096               /* entries per run (index 0 is this process) */
#define REMOTE_LOCAL_MASK 0xffffffffffffull /* an id without its node: generation | slot */

/* The flags of a message between nodes (the values of wire.h's WIRE_MSG_*). */
#define REMOTE_REQUEST 0x1u /* request_id: the sender waits for a reply */
#define REMOTE_REPLY 0x2u   /* the reply to request_id */
#define REMOTE_ERROR 0x4u   /* the request failed there: data is an int32 SPOOL_E* */
#define REMOTE_EXIT 0x8u    /* `from` ended: data is its int32 exit reason (a SPOOL_MSG_DOWN) */

/* Runtime notices that travel as messages of reserved types (flags 0). */
#define REMOTE_T_MONITOR 0xFFFF0100u       /* `from` monitors `to` */
#define REMOTE_T_STOP 0xFFFF0101u          /* stop `to`: data is the int32 reason */
#define REMOTE_T_WHEREIS 0xFFFF0102u       /* to the node actor, a request: data is the name */
#define REMOTE_T_WHEREIS_REPLY 0xFFFF0103u /* its reply: data is the 8-byte local part */

/* One message between nodes as the core and the node layer hand it over. */
typedef struct remote_message {
    uint64_t to;   /* route: the whole id (node index != 0); receive: the 48-bit local part */
    uint64_t from; /* route: a local id (or 0); receive: the 48-bit local part at the sender */
    uint32_t type;
    uint32_t flags; /* REMOTE_* */
    uint64_t request_id;
    const void *data;
    size_t size;
} remote_message;

/* What the node layer gives the core. Every function may be called from any thread. */
typedef struct remote_ops {
    /* Queues m for the node `peer` (what remote_node_up was given) in the life `incarnation`.
     * 0, or SPOOL_EOVERLOAD (its queue is full), SPOOL_EMSGSIZE (over its max_message),
     * SPOOL_ENOENT (not UP in that life any more), another error (counted as node_down). */
    int (*send)(void *user, void *peer, uint64_t incarnation, const remote_message *m);
    /* The peers for spool_node_peers (without dead_letters: the core adds its counts). */
    int (*peers)(void *user, spool_node_peer *peers, size_t capacity, size_t *count);
    void *user;
} remote_ops;

/*
 * Attaches a node layer: this node's name and incarnation, the ops. Spawns the node actor (it
 * answers REMOTE_T_WHEREIS). Errors: SPOOL_EINVAL, SPOOL_ESTATE
 * (attached already, not running), SPOOL_ENOMEM and those of spool_spawn.
 */
int remote_attach(spool_runtime *rt, const char *name, uint64_t incarnation, const remote_ops *ops);

/* Detaches it (the node layer has stopped sending and receiving): every entry UP goes DOWN with
 * `reason` first (monitors fire noconnection). Sends to remote ids are unknown_node afterwards.
 * The node actor is stopped. Idempotent. */
void remote_detach(spool_runtime *rt, const char *reason);

/* The node layer's net thread: a session with (name, incarnation) came UP; `peer` is what send
 * will get for it. Earlier lives of that name become STALE (their DOWN came before, or comes now
 * with `reason` "restarted"). Node monitors get NODEUP. Returns the entry's index, or 0 when the
 * table is full (logged; its messages are then discarded). */
uint32_t remote_node_up(spool_runtime *rt, const char *name, uint64_t incarnation, void *peer);

/* The session of entry `index` ended: state DOWN, every monitor across it fires
 * SPOOL_EXIT_NOCONNECTION, node monitors get NODEDOWN with `reason`. */
void remote_node_down(spool_runtime *rt, uint32_t index, const char *reason);

/* A message of entry `index`'s session (the net thread, in order): delivered here, or counted. */
void remote_receive(spool_runtime *rt, uint32_t index, const remote_message *m);

/* A message route handed to send and the node layer could not write (its session ended first):
 * counted as node_down (and a request's caller gets SPOOL_ENOENT). m->to is the whole id. */
void remote_undelivered(spool_runtime *rt, uint32_t index, const remote_message *m,
                        spool_dead_reason reason);

/* Core, any thread: the route of message_deliver for ids of another node. Takes m. */
struct message;
int remote_deliver(spool_runtime *rt, spool_id to, struct message *m);

/* Core: spool_monitor of a remote target from actor `self` (its home thread). */
int remote_monitor(spool_runtime *rt, spool_id self, spool_id target);

/* Core: a call by `caller` (SPOOL_ID_NONE: a blocking caller outside) ends without its answer
 * (its timeout, or the caller's end). If it went to another node it is no longer in flight: a
 * reply that comes later is a late_reply dead letter, and the registry does not keep the call
 * until that node's session ends. Any thread. */
void remote_call_forget(spool_runtime *rt, spool_id caller, uint64_t request_id);

/* Runtime create/destroy. */
int remote_create(spool_runtime *rt);
void remote_destroy(spool_runtime *rt);

/* ---------------------------------------------------------------------------------------------- */
/* Between remote.c and remote_watch.c: the state of the node table and the watches on it. Nothing
 * else in the runtime uses what follows. */

#include <pthread.h>

enum { ENTRY_NEW = 0, ENTRY_UP, ENTRY_DOWN, ENTRY_STALE };

/* An actor here watching an actor of the node (spool_monitor across the connection). */
typedef struct remote_watch {
    struct remote_watch *next;
    spool_id watcher;
    spool_id target;
} remote_watch;

/* spool_node_monitor: `watcher` is told when `node` ("*": any) comes up or goes down. */
typedef struct node_watch {
    struct node_watch *next;
    spool_id watcher;
    char node[SPOOL_NODE_NAME_MAX + 1];
} node_watch;

typedef struct remote_entry {
    char name[SPOOL_NODE_NAME_MAX + 1];     /* fixed once published */
    uint64_t incarnation;                   /* fixed */
    uint32_t index;                         /* fixed: its place in the table */
    void *peer;                             /* set (under lock) before the first UP is published */
    int state;                              /* atomic: ENTRY_* */
    uint64_t dead[SPOOL_DEAD_REASON_COUNT]; /* atomic add: sends to it that became dead letters */
    remote_watch *watches;                  /* under lock */
} remote_entry;

/* A request routed to a node and not answered yet: failed when that node's session ends. */
typedef struct remote_call {
    struct remote_call *next;
    spool_id caller; /* a local actor, or SPOOL_ID_NONE for a blocking caller outside */
    uint64_t request_id;
    spool_id target;
    uint32_t index; /* the node entry it went to */
} remote_call;

#define CALL_BUCKETS 1024

typedef struct remote_state {
    pthread_mutex_t calls_lock;
    remote_call *calls[CALL_BUCKETS]; /* under calls_lock, hashed by (caller, request_id) */
    uint64_t calls_live;              /* written under calls_lock, read atomically: calls listed */
    pthread_mutex_t lock;             /* entry creation, watches, node watches, attach/detach */
    remote_entry *entries[REMOTE_MAX_NODES]; /* atomic pointers; [0] unused */
    uint32_t count;                          /* entries made, + 1 (under lock) */
    int attached;                            /* atomic */
    uint64_t senders;                        /* atomic: routes inside ops.send now */
    remote_ops ops;
    char name[SPOOL_NODE_NAME_MAX + 1];
    uint64_t incarnation;
    spool_id node_actor; /* this node's */
    node_watch *node_watches;
} remote_state;

/* remote.c */
int remote_name_ok(const char *name); /* a NUL-terminated valid node name */
remote_entry *remote_entry_at(remote_state *r, uint32_t index); /* NULL if never given out */
spool_id remote_node_actor_of(uint32_t index); /* the node actor of entry `index` (local part 0) */

/* remote_watch.c: calls in flight (a request to another node is remembered until its answer
 * comes, so that the end of that node's session answers it with SPOOL_ENOENT) */
int remote_call_add(spool_runtime *rt, spool_id caller, uint64_t request_id, spool_id target);
int remote_call_take(spool_runtime *rt, spool_id caller, uint64_t request_id); /* was it there */
void remote_calls_fail(spool_runtime *rt, uint32_t index); /* entry `index` went down */
/* remote_watch.c: monitors and node monitors */
void remote_tell_down(spool_runtime *rt, spool_id who, spool_id target, int reason);
void remote_watch_done(spool_runtime *rt, remote_entry *e, spool_id who, spool_id target);
void remote_tell_node_watchers(spool_runtime *rt, remote_entry *e, uint32_t index, uint32_t type,
                               const char *reason);

#endif
