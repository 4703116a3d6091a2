/*
 * net_internal.h - what net.c (the public calls, the peer table, net_peer_send), net_thread.c (the
 * net thread, its sockets, its loop and the sending half of the data path) and session.c (what
 * packets and socket events do to a peer's session, the receiving half) share. Only these three
 * files include it. Everything here belongs to the net thread unless a field says otherwise.
 */
#ifndef SPOOL_NODES_NET_INTERNAL_H
#define SPOOL_NODES_NET_INTERNAL_H

#include "mailbox/atomic.h"
#include "mailbox/mailbox.h"
#include "mailbox/memory.h"
#include "nodes/keys.h"
#include "nodes/net.h"
#include "nodes/wire.h"
#include "nodes/zap.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#define NET_CTL_HWM 128 /* packets queued on a ctl DEALER (a few per heartbeat) */
#define NET_DATA_HWM 32 /* packets queued on a data DEALER: about 8 MiB (see NET_BATCH_BYTES) */
/* The largest frame a ROUTER takes (ZMQ_MAXMSGSIZE; larger: libzmq drops the connection): the
 * largest packet wire_parse accepts with the default limits, a FRAGMENT of a 1 MiB piece. */
#define NET_MAX_FRAME (WIRE_HEADER_SIZE + WIRE_DEFAULT_MAX_PACKET)
/* What one connection can make the ROUTER hold: NET_ROUTER_HWM packets of at most NET_MAX_FRAME
 * bytes, about 64 MiB (a data DEALER sends packets of NET_BATCH_BYTES or NET_PIECE_BYTES, so
 * about 16 MiB in practice; a ctl DEALER a few hundred bytes each). */
#define NET_ROUTER_HWM 64
#define NET_MEMBERS_PACKET (32 * 1024) /* the buffer of one MEMBERS packet */
#define NET_DATA_ID_SUFFIX "/data"     /* a data DEALER's routing id: the node name and this */
/* The data path's sizes (net.h says what they bound). A batch stops growing at NET_BATCH_BYTES
 * (one message larger than that, at most NET_FRAGMENT_THRESHOLD, goes alone). */
#define NET_BATCH_BYTES (256 * 1024)
#define NET_PIECE_BYTES (256 * 1024)
#define NET_TURN_BYTES (1024 * 1024)        /* packets one peer may write per turn of the loop */
#define NET_TURN_WALK 65536                 /* queued messages one turn may look at per peer */
#define NET_RECEIVE_BATCH 256               /* packets read from the ROUTER per round */
#define NET_RECEIVE_BYTES (4 * 1024 * 1024) /* and bytes */
/* and messages given to on_message per round (a DATA packet is taken whole, so a round may go up
 * to one packet's worth over): what bounds a round when messages are small */
#define NET_RECEIVE_MESSAGES 16384
/* and time: a round of reading, or of the data turns of all peers, ends after this long (the
 * loop then runs the timers; a slow on_message or a slow machine cannot starve heartbeats) */
#define NET_ROUND_NS (5 * 1000000)
#define NET_PENDING_JOINS 64      /* joins asked and not yet taken by the net thread */
#define NET_RECONNECT_MS 100      /* a DEALER's first reconnection delay */
#define NET_RECONNECT_MAX_MS 1000 /* and its longest, backing off */
#define NET_GOODBYE_LINGER_MS                                                                      \
    1000 /* a DEALER closed after a GOODBYE flushes it this long at most */

/* One queued message: one block from net_peer_send, freed once written or given back. */
typedef struct net_outgoing {
    mpsc_node link; /* first: the send queue's link, then the net thread's lists' */
    uint64_t to, from, request_id;
    uint32_t type, flags;
    uint32_t size;        /* payload bytes */
    uint64_t session;     /* the send session (net_peer.link >> 1) it was accepted for */
    uint64_t incarnation; /* the peer's life that session was with */
    unsigned char payload[];
} net_outgoing;
_Static_assert(sizeof(net_outgoing) <= NET_QUEUED_OVERHEAD, "a queued block counts its header");
_Static_assert(NET_BATCH_BYTES <= WIRE_DEFAULT_MAX_PACKET &&
                   NET_FRAGMENT_THRESHOLD + WIRE_DATA_FIXED + WIRE_MSG_FIXED + 8 <=
                       WIRE_DEFAULT_MAX_PACKET &&
                   NET_PIECE_BYTES <= WIRE_PIECE_MAX,
               "every packet the data path writes is one a peer takes");

/* A FIFO of net_outgoing the net thread owns (linked through link.next). */
typedef struct net_list {
    mpsc_node *head, *tail;
} net_list;

/* The froms that must wait (a hash set; 0 marks a free slot, so each from is stored + 1). */
typedef struct net_from_set {
    uint64_t *slots;
    size_t capacity, count; /* capacity: a power of two, or 0 */
    bool all;               /* no memory to grow: every message waits (order kept, speed lost) */
} net_from_set;

typedef struct net_peer {
    void *dealer;              /* ctl DEALER to the peer's ROUTER; NULL when none */
    void *monitor;             /* PAIR receiving the ctl DEALER's socket events */
    void *data;                /* data DEALER, opened and closed with `dealer` */
    void *data_monitor;        /* PAIR receiving the data DEALER's socket events */
    bool connected;            /* the DEALER's handshake succeeded, no disconnect since */
    bool have_hello;           /* in_session and stats.incarnation come from its HELLO or WELCOME */
    bool goodbye_awaited;      /* closing: it was in session and has not answered GOODBYE yet */
    bool miss_logged;          /* a missed heartbeat of this session was logged */
    bool failure_logged;       /* a refused handshake of this DEALER was logged */
    uint64_t out_session;      /* this node's session id towards it: in every packet sent to it */
    uint64_t in_session;       /* its session id: every packet from it must carry it */
    int64_t last_heard_ns;     /* the last packet of its session */
    int64_t last_heartbeat_ns; /* the last HEARTBEAT sent */
    int64_t next_heartbeat_ns; /* UP: when the next one goes */
    int64_t next_hello_ns;     /* JOINING and connected: when HELLO goes again */
    uint32_t max_message;      /* what its HELLO or WELCOME announced (0: nothing) */
    uint8_t server_key[KEYS_BINARY_SIZE]; /* CURVE: the key its ROUTER must prove */

    /* Sending (net thread): the send session's state, reset when it ends. */
    uint64_t send_session;  /* counts this peer's UPs; link >> 1 */
    uint64_t send_seq;      /* the seq the next message written takes */
    net_list replay;        /* taken before the queue: held messages given another look */
    net_list held;          /* waiting behind the message in fragments (their from is blocked) */
    net_from_set blocked;   /* the froms of `fragment` and of the held messages */
    net_outgoing *fragment; /* the message going as FRAGMENTs, or NULL */
    uint64_t fragment_seq;  /* its seq (0 before its first piece) */
    size_t fragment_offset; /* its bytes written */
    zmq_msg_t waiting;      /* a packet the data DEALER refused (EAGAIN), sent first */
    bool has_waiting;
    bool waiting_piece; /* `waiting` is a piece of `fragment` (else a batch of `written`) */
    size_t waiting_end; /* a piece: the fragment's offset once it is written */
    net_list written;   /* the messages of the next DATA packet (in `waiting` once encoded),
                           freed once it is sent */
    uint32_t written_count;
    size_t written_size; /* their DATA packet's bytes */
    bool data_blocked;   /* the data DEALER said EAGAIN: polled for POLLOUT */

    /* Receiving (net thread): the peer's in_session, reset with it. */
    uint64_t recv_seq;        /* the seq the next new message must carry */
    unsigned char *assembly;  /* the fragmented message being reassembled, or NULL */
    wire_msg assembly_header; /* its to, from, type, flags, request_id */
    uint64_t assembly_seq, assembly_size, assembly_offset;

    /* Written by the net thread holding node->lock; other threads read it holding the lock (the
     * net thread reads it without: it is the only writer). The queue fields and `overload` are
     * filled in from the atomics below when copied out. */
    net_peer_stats stats;

    /* Written by net_peer_send (any thread): one cache line apart from the rest (the block comes
     * from the allocator, so padding rather than alignment keeps it apart). */
    char producer_pad[CACHE_LINE];
    mpsc_producer_end producer; /* any thread, atomic exchange: the send queue's newest */
    uint64_t queued_bytes;      /* any thread, atomic add: NET_QUEUED_OVERHEAD + size each */
    uint64_t queued_messages;   /* any thread, atomic add */
    uint64_t senders;           /* any thread, atomic add: net_peer_send calls inside now */
    uint64_t overload;          /* any thread, atomic add: sends refused with SPOOL_EFULL */
    char published_pad[CACHE_LINE];
    /* Written by the net thread, read by every send: rarely written. */
    uint64_t link;             /* atomic: send_session << 1 | 1 when UP, send_session << 1 not */
    uint64_t link_incarnation; /* atomic: the incarnation of that session */
    uint64_t link_max_message; /* atomic: what the peer accepts (0: ours is the only bound) */
    int idle; /* atomic: 1: the net thread may sleep without looking at this queue (it sets it,
                 the send that takes it from 1 to 0 writes the eventfd) */
    char consumer_pad[CACHE_LINE];
    mpsc_consumer_end consumer; /* net thread: the send queue's oldest */
} net_peer;

typedef struct net_join_request {
    char name[NET_NAME_SIZE];
    char endpoint[NET_ENDPOINT_SIZE];
} net_join_request;

struct net_node {
    /* Set by create, read-only afterwards (endpoint: by the net thread before create returns). */
    spool_allocator allocator;
    char name[NET_NAME_SIZE];
    char listen[NET_ENDPOINT_SIZE];   /* as configured */
    char endpoint[NET_ENDPOINT_SIZE]; /* as bound */
    uint64_t cluster;
    uint64_t incarnation;
    uint32_t heartbeat_ms, down_after_ms;
    bool insecure;
    keys_pair keys;        /* CURVE; wiped at destroy */
    keys_allowlist *allow; /* CURVE; read-only, any thread */
    void (*on_event)(void *user, const net_event *event);
    void (*on_message)(void *user, net_peer *peer, uint64_t incarnation, const wire_msg *msg);
    void (*on_undelivered)(void *user, net_peer *peer, uint64_t incarnation, const wire_msg *msg,
                           net_undelivered why);
    void *user;
    size_t max_message, queue_bytes;
    int send_closed; /* atomic: destroy has begun, net_peer_send says SPOOL_ESTOPPED */
    int wake_fd;     /* eventfd: any thread writes, the net thread reads */
    pthread_t thread;

    /* The net thread's. */
    void *ctx;
    void *router;
    zap_handler *zap; /* CURVE; zap_stats from any thread */
    unsigned monitor_sequence;
    bool closing;
    int64_t close_deadline_ns;
    size_t first_turn; /* the peer whose data turn comes first in the next round (they rotate) */

    /* Shared, under lock. The peers array and each peer's stats are written by the net thread
     * only (holding the lock); the joins and `stopping` by any thread. */
    pthread_mutex_t lock;
    pthread_cond_t started; /* create waits on it for the ROUTER to be bound */
    bool start_done;
    int start_status;
    char start_error[256];
    net_peer **peers; /* never shrinks; a peer is freed at destroy only */
    size_t peer_count, peer_capacity;
    net_join_request joins[NET_PENDING_JOINS];
    size_t join_count;
    bool stopping;
    uint64_t malformed[NET_MALFORMED_COUNT];
    uint64_t stale;
    uint64_t discovered;
};

/* net_thread.c */
void *net_thread_main(void *node); /* the thread: open, signal create, run, close */
/* New DEALERs, ctl and data (and a new out_session), to stats.endpoint. SPOOL_ESYSTEM (logged) if
 * not. */
int net_dealer_open(net_node *n, net_peer *p);
void net_dealer_close(net_node *n, net_peer *p, int linger_ms);
/* Sends one packet on the peer's ctl DEALER, never waiting. */
void net_send(net_node *n, net_peer *p, const void *packet, int size);

/* net_send.c: the sending half */
/* The send session begins (the peer is UP): publish it, seq 1. Before the NODE_UP event. */
void net_data_up(net_node *n, net_peer *p);
/* The send session ended: refuse new sends (publish). Before the NODE_DOWN event. */
void net_data_unpublish(net_node *n, net_peer *p);
/* Gives back everything queued or held for p (on_undelivered `why`) and forgets the packet that
 * waits. After the NODE_DOWN event. */
void net_data_reset(net_node *n, net_peer *p, net_undelivered why);
/* Whether p's data path has something to do now. */
bool net_data_ready(net_peer *p);
/* One turn of p's data path: at most NET_TURN_BYTES of packets, one piece among them, until
 * `stop` at the latest (one packet at least). */
void net_data_turn(net_node *n, net_peer *p, int64_t stop);

/* net.c */
void net_say(char *err, size_t err_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
void net_log(const net_node *n, const char *format, ...) __attribute__((format(printf, 2, 3)));
int64_t net_now_ns(void);
uint64_t net_random64(void); /* never 0 */
void net_stat_add(net_node *n, uint64_t *counter, uint64_t amount);
/* Gives one queued message back to on_undelivered and frees it (not counted: the caller adds
 * stats.undelivered and the queue counters). */
void net_give_back(net_node *n, net_peer *p, net_outgoing *m, net_undelivered why);
/* Frees one queued message. */
void net_outgoing_free(net_node *n, net_outgoing *m);
/* "tcp://HOST:PORT" into HOST and PORT (digits or "*"); 0, or -1 if it is not that. */
int net_endpoint_split(const char *endpoint, char *host, size_t host_size, char *port,
                       size_t port_size);
bool net_host_wildcard(const char *host);
bool net_host_loopback(const char *host); /* 127.0.0.1, localhost, ::1 */
net_peer *net_peer_find(net_node *n, const char *name);
/* CURVE: the allowlist's entry for `name`, or NULL (always NULL when insecure). Any thread. */
const keys_entry *net_allowed(const net_node *n, const char *name);
/* A new peer in state JOINING without a DEALER; NULL when NET_MAX_PEERS are known or no memory. */
net_peer *net_peer_add(net_node *n, const char *name, const char *endpoint);
/* session.c */
/* Forgets the message being reassembled (its buffer) and restarts the receive seq. */
void session_receive_reset(net_node *n, net_peer *p);
/* Does what one packet says; returns how many messages it gave to on_message. */
size_t session_packet(net_node *n, zmq_msg_t *routing_id, zmq_msg_t *body, int64_t now);
/* Counts a dropped frame (and logs the first of each reason); `from` (may be NULL) is the peer
 * it is blamed on, `body` (may be NULL) where it came from. */
void session_malformed(net_node *n, net_peer *from, net_malformed reason, const char *words,
                       zmq_msg_t *body, int64_t now);
/* `data`: the event is of the data DEALER (only its disconnect matters). */
void session_monitor_event(net_node *n, net_peer *p, bool data, uint16_t event, uint32_t value,
                           int64_t now);
void session_join(net_node *n, const char *name, const char *endpoint, int64_t now);
/* Sends what is due and ends silent sessions; returns the next deadline (INT64_MAX: none). */
int64_t session_timers(net_node *n, int64_t now);
void session_begin_close(net_node *n, int64_t now);

#endif
