/*
 * net.h - a node's network: the net thread that owns the ZeroMQ sockets, the handshake that makes
 * two nodes members of each other (a session), the heartbeats that watch a session, the events
 * that say a peer came up or went down, and the data path that carries messages between nodes in
 * session. Internal: the runtime (nodes/node.c) and `spool run` build on it.
 *
 * Sockets. One net thread per node owns the context and every socket. The node binds one ROUTER
 * (receive only, ROUTER_HANDOVER=1; a CURVE server unless insecure, its ZAP handler bound first and
 * served in the same zmq_poll loop) and connects, per peer, two DEALERs to the peer's ROUTER (CURVE
 * clients that accept only the peer's own public key): `ctl` for HELLO, WELCOME, HEARTBEAT(_ACK),
 * GOODBYE and MEMBERS, and `data` for DATA and FRAGMENT, so heartbeats never wait behind bulk. They
 * are opened and closed together (one session, one out_session). Their routing ids are the node's
 * name and the name + "/data" ('/' is not in a node name): distinct, so ROUTER_HANDOVER lets each
 * reconnecting DEALER take over its own old connection only. Everything a node sends to a peer goes
 * through its DEALERs; everything it receives comes in on its ROUTER. Other threads reach the net
 * thread through an eventfd polled with the sockets.
 *
 * Handshake (three legs). A node that wants a session with a peer sends HELLO on its ctl DEALER
 * once that DEALER's connection is up (and again every heartbeat while no session exists). The peer
 * checks the HELLO (its cluster id; under CURVE, that its name is the one the ZAP handler gave the
 * key), connects DEALERs of its own back to the endpoint the HELLO names, and answers WELCOME,
 * echoing the HELLO's session. The joiner is UP when a WELCOME echoes its current session; it
 * then heartbeats at once, and the acceptor is UP at the first HEARTBEAT (or MEMBERS, DATA,
 * FRAGMENT) of that session (proof that its WELCOME arrived). Two nodes that join each other at
 * the same time answer each other's HELLO and both go UP on the WELCOMEs. Every packet a node
 * sends to a peer carries its own session id for that pair; the receiver drops what does not carry
 * the peer's current one (counted stale).
 *
 * Failure detection. Each side heartbeats every heartbeat_ms and acknowledges every heartbeat;
 * a peer is DOWN:
 *   "goodbye"             it said GOODBYE (it is stopping: no reconnection);
 *   "disconnected"        a DEALER's connection (ctl or data) closed (zmq_socket_monitor: a killed
 *                         process is seen at once);
 *   "heartbeat timeout"   nothing of its session heard for down_after_ms (a frozen process, a cut
 *                         link);
 *   "incarnation changed" a HELLO or WELCOME from a new life of that node (it restarted before
 *                         the old session was seen to end);
 *   "session restarted"   a HELLO of a new session from the same life (the peer ended the old
 *                         session, e.g. it timed us out first);
 *   "protocol error: ..." a packet from the peer that the parser refused (the parser's words), a
 *                         sequence gap, a FRAGMENT that does not continue the open one;
 *   "out of memory"       no memory to reassemble a message of the peer's;
 *   "shutdown"            this node is being destroyed (every UP gets its DOWN).
 * After any DOWN but "goodbye" and "shutdown" the node keeps trying to start a new session with
 * fresh DEALERs and session id; a new session is a new UP. A heartbeat interval with nothing heard
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
 * Data path. net_peer_send (any thread) copies a message into one block and pushes it on the
 * peer's send queue: an MPSC queue (mailbox.h) bounded in bytes by an atomic counter (over
 * queue_bytes: SPOOL_EFULL, counted as overload). It is accepted only for the session UP now in
 * that incarnation (a word the net thread publishes at UP and DOWN); a send that races a DOWN is
 * queued and comes back through on_undelivered NODE_DOWN, like everything still queued when a
 * session ends (SHUTDOWN at destroy): each accepted message is either written in its session or
 * given back, exactly once. The net thread is woken only when it may be asleep (a per-peer idle
 * flag it sets before sleeping): a burst of sends costs one eventfd write, not one per message.
 * When the data DEALER takes a packet (never blocking: ZMQ_DONTWAIT; on EAGAIN the packet waits
 * and the DEALER is polled for POLLOUT), the net thread packs as many queued messages as fit in
 * NET_BATCH_BYTES into one DATA packet. A message over NET_FRAGMENT_THRESHOLD goes as FRAGMENTs of
 * NET_PIECE_BYTES, one piece per turn of the loop, between the DATA packets of the other senders'
 * messages; at most one message per peer is in fragments at a time, and a message whose `from` is
 * that of a message in fragments (or held behind one) is held until it is written, so messages of
 * one `from` keep their order. A message also waits while the peer is slow: the queue is the only
 * buffer beyond libzmq's NET_DATA_HWM packets. Each turn writes at most NET_TURN_BYTES per peer,
 * each round reads at most NET_RECEIVE_BATCH packets, NET_RECEIVE_BYTES or NET_RECEIVE_MESSAGES
 * from the ROUTER, and neither goes on past NET_ROUND_NS: heartbeats and timers run between, also
 * while a 64 MiB message is on its way. (Those constants are in net_internal.h.)
 * Sequence numbers count the messages of a session from 1 (DATA first_seq, FRAGMENT seq: a
 * message takes its number when its first packet is written). The receiver wants exactly the next
 * number from every new message, the pieces of a FRAGMENT in order and of one message at a time
 * (same seq, header and total_size; offset = the bytes so far); anything else ends the session
 * ("protocol error: ..."). It reassembles a fragmented message into one buffer (at most
 * max_message, its own limit, which it also announces in HELLO) and gives each complete message to
 * on_message: per `from` in the order sent.
 *
 * Bad input. A frame that is not exactly one packet, or a packet wire_parse refuses, is counted by
 * reason (net_malformed) and dropped; when it came from a peer in session (under CURVE: by its key;
 * insecure: by its routing id) that session ends with "protocol error: ...". Nothing a peer sends
 * grows memory without bound: frames are capped at 8 + WIRE_DEFAULT_MAX_PACKET bytes
 * (ZMQ_MAXMSGSIZE), what one connection can make the ROUTER hold at about 64 MiB (NET_ROUTER_HWM
 * packets), a reassembly at max_message, peers at NET_MAX_PEERS.
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
/* A message of more payload bytes than this goes as FRAGMENTs (one DATA packet otherwise). */
#define NET_FRAGMENT_THRESHOLD ((size_t)256 << 10)

typedef enum net_event_kind {
    NET_NODE_UP = 1,
    NET_NODE_DOWN = 2,
} net_event_kind;

typedef struct net_node net_node;
typedef struct net_peer net_peer; /* opaque outside the net layer; never freed before destroy */

/* What on_event gets. The strings are valid during the call only. */
typedef struct net_event {
    net_event_kind kind;
    const char *name;     /* the peer */
    uint64_t incarnation; /* the peer's life the session was with */
    const char *reason;   /* NODE_DOWN: see above; NODE_UP: NULL */
    net_peer *peer;       /* stable for the node's life: what net_peer_send takes */
} net_event;

/* Why net_config.on_undelivered got a message back. */
typedef enum net_undelivered {
    NET_UNDELIVERED_NODE_DOWN = 1, /* queued and not yet written when its session ended */
    NET_UNDELIVERED_SHUTDOWN = 2,  /* queued when this node was destroyed */
} net_undelivered;

typedef struct net_config {
    const char *name;     /* this node; a node name (keys.h) */
    const char *cluster;  /* hashed into the cluster id; NULL: NET_DEFAULT_CLUSTER */
    const char *listen;   /* "tcp://HOST:PORT"; PORT 0 or * picks a free one (net_node_endpoint) */
    const char *keys_dir; /* CURVE: DIR/NAME.key and .pub; the allowlist is DIR's *.pub */
    bool insecure; /* plain connections, only on loopback (listen, joins, HELLOs); keys_dir NULL */
    uint32_t heartbeat_ms;  /* 0: NET_DEFAULT_HEARTBEAT_MS */
    uint32_t down_after_ms; /* 0: NET_DEFAULT_DOWN_AFTER_MS; must exceed heartbeat_ms */
    /* Called on the net thread, for every NODE_UP and NODE_DOWN in order; heartbeats wait while
     * it runs, so it must be short. It may call net_node_join, _members, _stats, _endpoint and
     * net_peer_send (a send from NODE_UP is taken; from NODE_DOWN it is SPOOL_ENOENT); never
     * net_node_destroy. May be NULL. */
    void (*on_event)(void *user, const net_event *event);
    void *user;
    /* The data path. Called on the net thread for every message of a peer's current session as
     * it completes (a fragmented one at its last piece, so messages of other `from`s written
     * meanwhile come first; per `from`, in the order sent). msg->data/size is the whole payload,
     * valid during the call only. `peer` and `incarnation` say which life of which node sent it.
     * Short: the loop waits for it. It may call net_peer_send. May be NULL (messages dropped). */
    void (*on_message)(void *user, net_peer *peer, uint64_t incarnation, const wire_msg *msg);
    /* Each message net_peer_send accepted that will never be written (see net_undelivered),
     * once, on the net thread (or in destroy); msg->data/size is its payload, valid during the
     * call. NODE_DOWN comes after that session's NODE_DOWN event (most at once, one that raced
     * the DOWN when the net thread next looks). It may call net_peer_send. May be NULL. */
    void (*on_undelivered)(void *user, net_peer *peer, uint64_t incarnation, const wire_msg *msg,
                           net_undelivered why);
    size_t max_message; /* payload bytes of one message, sent or received (announced in HELLO);
                           0: WIRE_DEFAULT_MAX_MESSAGE (64 MiB); at most UINT32_MAX */
    size_t queue_bytes; /* bound of a peer's send queue: each message counts its payload and
                           NET_QUEUED_OVERHEAD bytes; 0: NET_DEFAULT_QUEUE_BYTES; at least
                           max_message + NET_QUEUED_OVERHEAD */
    const spool_allocator *allocator; /* NULL: malloc/free */
} net_config;

#define NET_DEFAULT_QUEUE_BYTES ((size_t)128 << 20)
#define NET_QUEUED_OVERHEAD 64 /* bytes a queued message counts beyond its payload (its block) */

typedef struct net_node net_node;

/*
 * Queues one message for `peer` (any thread, the net thread's callbacks included; never blocks,
 * never waits for the net thread) and wakes the net thread if it may be asleep. msg->to and ->from
 * are 48-bit wire ids (to 0: the peer's node itself), msg->flags/request_id as in wire.h;
 * msg->data/size is copied. The message goes only in the session of `incarnation` that is UP now:
 * if the peer is not UP in that incarnation it is refused; if the session ends before it is
 * written, on_undelivered gets it back (NODE_DOWN). Messages from one thread to one peer are
 * written in the order queued; a message over NET_FRAGMENT_THRESHOLD bytes goes as FRAGMENTs, and
 * messages of other `from`s may pass it meanwhile (never those of the same `from`). Errors:
 * SPOOL_EINVAL (NULL, ids over 48 bits, flags, request_id without a request flag, data NULL with a
 * size), SPOOL_EMSGSIZE (over max_message, ours or the peer's: nothing queued), SPOOL_ENOENT (not
 * UP in that incarnation), SPOOL_EFULL (the queue would hold over queue_bytes: overload, counted),
 * SPOOL_ENOMEM, SPOOL_ESTOPPED (net_node_destroy has begun). Not after destroy returned.
 */
int net_peer_send(net_node *node, net_peer *peer, uint64_t incarnation, const wire_msg *msg);

/* Why a frame was dropped: X(enum suffix, counter name). */
#define NET_MALFORMED_MAP(X)                                                                       \
    X(FRAMES, "frames")               /* not exactly a routing id and one frame */                 \
    X(BAD_HEADER, "bad_header")       /* magic, version, kind or header flags */                   \
    X(TRUNCATED, "truncated")         /* ends before its layout does */                            \
    X(INVALID, "invalid")             /* another field the parser refuses, trailing bytes */       \
    X(TOO_LARGE, "too_large")         /* over a limit (SPOOL_EMSGSIZE) */                          \
    X(WRONG_CLUSTER, "wrong_cluster") /* HELLO/WELCOME of another cluster */                       \
    X(WRONG_NAME, "wrong_name")       /* HELLO/WELCOME name not its key's (or routing id's) */     \
    X(SEQUENCE, "sequence")           /* DATA/FRAGMENT: a seq gap, a broken fragment */            \
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
    /* The data path, over all sessions. */
    uint64_t messages_in, messages_out;   /* given to on_message; written whole to the DEALER */
    uint64_t fragments_in, fragments_out; /* FRAGMENT packets */
    uint64_t queued_messages,
        queued_bytes;           /* in its send queue now (bytes as queue_bytes counts) */
    uint64_t overload;          /* sends refused with SPOOL_EFULL */
    uint64_t undelivered;       /* messages given to on_undelivered */
    uint64_t last_seq_received; /* of its current (or last) session, sent in each HEARTBEAT */
} net_peer_stats;

typedef struct net_stats {
    uint64_t malformed[NET_MALFORMED_COUNT]; /* frames dropped, by reason */
    uint64_t stale;      /* well-formed packets of no current session (late, or of an old one) */
    uint64_t discovered; /* peers joined because a peer in session named them (MEMBERS) */
    zap_counts zap;      /* ZAP answers (all zero when insecure) */
    size_t peer_count;   /* peers known, whatever the capacity given */
} net_stats;

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
