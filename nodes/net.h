/*
 * net.h - a node's membership and failure detection: the net thread that owns the ZeroMQ sockets,
 * the handshake that makes two nodes members of each other (a session), the heartbeats that
 * watch a session and the events that say a peer came up or went down. Internal: the runtime and
 * `spool run` build on it; message routing between nodes comes later, on the same thread.
 *
 * Sockets. One net thread per node owns the context and every socket. The node binds one ROUTER
 * (receive only, ROUTER_HANDOVER=1; a CURVE server unless insecure, its ZAP handler bound first and
 * served in the same zmq_poll loop) and connects, per peer, one `ctl` DEALER to the peer's ROUTER
 * (a CURVE client that accepts only the peer's own public key). Everything a node sends to a peer
 * goes through its DEALER; everything it receives comes in on its ROUTER. Other threads reach the
 * net thread through an eventfd polled with the sockets.
 *
 * Handshake (three legs). A node that wants a session with a peer sends HELLO on its DEALER once
 * the DEALER's connection is up (and again every heartbeat while no session exists). The peer
 * checks the HELLO (its cluster id; under CURVE, that its name is the one the ZAP handler gave the
 * key), connects a DEALER of its own back to the endpoint the HELLO names, and answers WELCOME,
 * echoing the HELLO's session. The joiner is UP when a WELCOME echoes its current session; it
 * then heartbeats at once, and the acceptor is UP at the first HEARTBEAT of that session (proof
 * that its WELCOME arrived). Two nodes that join each other at the same time answer each other's
 * HELLO and both go UP on the WELCOMEs. Every packet a node sends to a peer carries its own session
 * id for that pair; the receiver drops what does not carry the peer's current one (counted stale).
 *
 * Failure detection. Each side heartbeats every heartbeat_ms and acknowledges every heartbeat;
 * a peer is DOWN:
 *   "goodbye"             it said GOODBYE (it is stopping: no reconnection);
 *   "disconnected"        the DEALER's connection closed (zmq_socket_monitor: a killed process
 *                         is seen at once);
 *   "heartbeat timeout"   nothing of its session heard for down_after_ms (a frozen process, a cut
 *                         link);
 *   "incarnation changed" a HELLO or WELCOME from a new life of that node (it restarted before
 *                         the old session was seen to end);
 *   "session restarted"   a HELLO of a new session from the same life (the peer ended the old
 *                         session, e.g. it timed us out first);
 *   "protocol error: ..." a packet from the peer that the parser refused (the parser's words).
 *   "shutdown"            this node is being destroyed (every UP gets its DOWN).
 * After any DOWN but "goodbye" and "shutdown" the node keeps trying to start a new session with a
 * fresh DEALER and session id; a new session is a new UP. A heartbeat interval with nothing heard
 * counts as missed; the first miss of a session is logged to stderr.
 *
 * Members. When a peer comes UP a node sends it a MEMBERS packet: its other peers in session and
 * where it reaches them. The receiver joins each one it does not know (under CURVE only names its
 * allowlist has, insecure only on loopback). So a node that joins one member meets them all:
 * of two newcomers that meet the cluster at once, at least one hears of the other.
 *
 * Joining. net_node_join takes "NAME@ENDPOINT": under CURVE the name picks the public key the
 * DEALER demands of the server (from the allowlist), so it cannot be left out; insecure nodes take
 * the same form (the name is then checked against the WELCOME only, unauthenticated), so a cluster
 * moves to CURVE without changing its joins. The acceptor learns the joiner's endpoint from HELLO;
 * a wildcard host there (0.0.0.0, *, ::) is replaced by the address the packet came from.
 *
 * Bad input. A frame that is not exactly one packet, or a packet wire_parse refuses, is counted by
 * reason (net_malformed) and dropped; when it came from a peer in session (under CURVE: by its key;
 * insecure: by its routing id) that session ends with "protocol error: ...". Nothing a peer sends
 * grows memory without bound: frames are capped at 64 KiB (ZMQ_MAXMSGSIZE: only control packets
 * travel so far), peers at NET_MAX_PEERS, per-socket queues by small high-water marks.
 *
 * Errors are negative SPOOL_E* codes with a line in err (NULL-safe).
 */
#ifndef SPOOL_NODES_NET_H
#define SPOOL_NODES_NET_H

#include "nodes/wire.h"
#include "nodes/zap.h"
#include "spool.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define NET_DEFAULT_HEARTBEAT_MS 1000
#define NET_DEFAULT_DOWN_AFTER_MS 5000
#define NET_DEFAULT_CLUSTER "spool"
#define NET_NAME_SIZE (WIRE_NAME_MAX + 1)         /* a node name and its NUL */
#define NET_ENDPOINT_SIZE (WIRE_ENDPOINT_MAX + 1) /* an endpoint and its NUL */
#define NET_MAX_PEERS 256        /* peers one node knows; HELLOs beyond are refused (counted) */
#define NET_GOODBYE_WAIT_MS 1000 /* how long destroy waits for peers to answer GOODBYE */

typedef enum net_event_kind {
    NET_NODE_UP = 1,
    NET_NODE_DOWN = 2,
} net_event_kind;

/* What on_event gets. The strings are valid during the call only. */
typedef struct net_event {
    net_event_kind kind;
    const char *name;     /* the peer */
    uint64_t incarnation; /* the peer's life the session was with */
    const char *reason;   /* NODE_DOWN: see above; NODE_UP: NULL */
} net_event;

typedef struct net_config {
    const char *name;     /* this node; a node name (keys.h) */
    const char *cluster;  /* hashed into the cluster id; NULL: NET_DEFAULT_CLUSTER */
    const char *listen;   /* "tcp://HOST:PORT"; PORT 0 or * picks a free one (net_node_endpoint) */
    const char *keys_dir; /* CURVE: DIR/NAME.key and .pub; the allowlist is DIR's *.pub */
    bool insecure; /* plain connections, only on loopback (listen, joins, HELLOs); keys_dir NULL */
    uint32_t heartbeat_ms;  /* 0: NET_DEFAULT_HEARTBEAT_MS */
    uint32_t down_after_ms; /* 0: NET_DEFAULT_DOWN_AFTER_MS; must exceed heartbeat_ms */
    /* Called on the net thread, for every NODE_UP and NODE_DOWN in order; heartbeats wait while
     * it runs, so it must be short. It may call net_node_join, _members, _stats and _endpoint;
     * never net_node_destroy. May be NULL. */
    void (*on_event)(void *user, const net_event *event);
    void *user;
    const spool_allocator *allocator; /* NULL: malloc/free */
} net_config;

/* Why a frame was dropped: X(enum suffix, counter name). */
#define NET_MALFORMED_MAP(X)                                                                       \
    X(FRAMES, "frames")               /* not exactly a routing id and one frame */                 \
    X(BAD_HEADER, "bad_header")       /* magic, version, kind or header flags */                   \
    X(TRUNCATED, "truncated")         /* ends before its layout does */                            \
    X(INVALID, "invalid")             /* another field the parser refuses, trailing bytes */       \
    X(TOO_LARGE, "too_large")         /* over a limit (SPOOL_EMSGSIZE) */                          \
    X(WRONG_CLUSTER, "wrong_cluster") /* HELLO/WELCOME of another cluster */                       \
    X(WRONG_NAME, "wrong_name")       /* HELLO/WELCOME name not its key's (or routing id's) */     \
    X(UNSUPPORTED, "unsupported")     /* DATA/FRAGMENT: no routing yet */                          \
    X(TOO_MANY_PEERS, "too_many_peers")

typedef enum net_malformed {
#define NET_MALFORMED_ENUM(suffix, counter) NET_MALFORMED_##suffix,
    NET_MALFORMED_MAP(NET_MALFORMED_ENUM)
#undef NET_MALFORMED_ENUM
        NET_MALFORMED_COUNT
} net_malformed;

/* "frames", "bad_header", ...; "?" out of range. */
const char *net_malformed_name(net_malformed reason);

typedef enum net_peer_state {
    NET_PEER_JOINING = 1, /* a DEALER and no session yet: handshaking, or waiting to reconnect */
    NET_PEER_UP = 2,      /* in session */
    NET_PEER_DOWN = 3,    /* said goodbye (or this node stops): nothing more is tried */
} net_peer_state;

/* "joining", "up", "down". */
const char *net_peer_state_name(net_peer_state state);

typedef struct net_peer_stats {
    char name[NET_NAME_SIZE];
    char endpoint[NET_ENDPOINT_SIZE]; /* where this node connects to it */
    net_peer_state state;
    uint64_t incarnation; /* of its current (or last) session; 0 before any */
    uint64_t ups, downs;  /* sessions started and ended */
    uint64_t heartbeats_sent, heartbeats_received, acks_received;
    uint64_t missed;              /* heartbeat intervals with nothing heard, over all sessions */
    uint64_t rtt_ns;              /* round trip of the last HEARTBEAT_ACK; 0 before any */
    uint64_t bytes_in, bytes_out; /* packets from it (ROUTER) and to it (DEALER) */
    uint64_t handshake_failures;  /* DEALER handshakes refused (e.g. its ZAP refused our key) */
} net_peer_stats;

typedef struct net_stats {
    uint64_t malformed[NET_MALFORMED_COUNT]; /* frames dropped, by reason */
    uint64_t stale;      /* well-formed packets of no current session (late, or of an old one) */
    uint64_t discovered; /* peers joined because a peer in session named them (MEMBERS) */
    zap_counts zap;      /* ZAP answers (all zero when insecure) */
    size_t peer_count;   /* peers known, whatever the capacity given */
} net_stats;

typedef struct net_node net_node;

/*
 * Starts a node: loads its keys and allowlist (unless insecure), starts the net thread, which
 * opens the ZAP handler, binds the ROUTER and then runs. Returns once the ROUTER is bound (or
 * failed). Errors: SPOOL_EINVAL (a bad name, endpoint, heartbeat/down_after, insecure beyond
 * loopback, both or neither of keys_dir and insecure), SPOOL_ENOENT / SPOOL_ECONFIG (keys.h),
 * SPOOL_ESYSTEM (bind failed, address in use, thread), SPOOL_ENOMEM. *out is NULL on error. Any
 * thread.
 */
int net_node_create(const net_config *config, net_node **out, char *err, size_t err_size);

/* The endpoint the ROUTER is bound to ("tcp://127.0.0.1:40123"). Valid until destroy. Any thread.
 */
const char *net_node_endpoint(const net_node *node);

/*
 * Asks the net thread to start a session with "NAME@ENDPOINT" (see above) and returns at once;
 * the outcome is a NODE_UP (or nothing: see net_node_stats). Joining a known peer is a no-op.
 * Errors: SPOOL_EINVAL (not NAME@tcp://..., this node's own name, an insecure node's join beyond
 * loopback), SPOOL_ENOENT (CURVE: no NAME.pub
 * in the allowlist), SPOOL_EFULL (too many joins pending), SPOOL_ESTOPPED (being destroyed).
 * Any thread.
 */
int net_node_join(net_node *node, const char *peer, char *err, size_t err_size);

/* The names of the peers UP now, at most `capacity` of them into names; *count (may be NULL) gets
 * how many are UP. Any thread. */
void net_node_members(net_node *node, char (*names)[NET_NAME_SIZE], size_t capacity, size_t *count);

/* The node's counters into *out and its peers' into peers[0..capacity) (may be NULL with 0);
 * out->peer_count says how many peers there are. Any thread; each peer is a consistent copy. */
void net_node_stats(net_node *node, net_stats *out, net_peer_stats *peers, size_t capacity);

/*
 * Stops the node: NODE_DOWN "shutdown" for each peer UP, GOODBYE to every peer, waits up to
 * NET_GOODBYE_WAIT_MS for those UP to answer it (a frozen peer costs that wait, no more), closes
 * every socket without lingering further and joins the thread: returns within about 1 s. Sets
 * *node to NULL; NULL or *node NULL is fine. Any thread but the net thread (not from on_event).
 */
void net_node_destroy(net_node **node);

#endif
