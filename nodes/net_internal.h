/*
 * net_internal.h - what net.c (the public calls, the peer table), net_thread.c (the net thread,
 * its sockets and loop) and session.c (what packets and socket events do to a peer's session)
 * share. Only these three files include it. Everything here belongs to the net thread unless a
 * field says otherwise.
 */
#ifndef SPOOL_NODES_NET_INTERNAL_H
#define SPOOL_NODES_NET_INTERNAL_H

#include "mailbox/memory.h"
#include "nodes/keys.h"
#include "nodes/net.h"
#include "nodes/wire.h"
#include "nodes/zap.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <zmq.h>

#define NET_CTL_HWM 128 /* packets queued on one DEALER (a few per heartbeat) */
/* What one connection can make the ROUTER hold: NET_ROUTER_HWM packets of NET_MAX_FRAME bytes
 * (16 MiB). Only control packets travel so far (a few hundred bytes); the data path will need
 * frames of WIRE_DEFAULT_MAX_PACKET and a bound in bytes of its own. */
#define NET_ROUTER_HWM 256
#define NET_MAX_FRAME (64 * 1024)
#define NET_PENDING_JOINS 64      /* joins asked and not yet taken by the net thread */
#define NET_RECEIVE_BATCH 256     /* packets read per poll round, so timers are never starved */
#define NET_RECONNECT_MS 100      /* a DEALER's first reconnection delay */
#define NET_RECONNECT_MAX_MS 1000 /* and its longest, backing off */
#define NET_GOODBYE_LINGER_MS                                                                      \
    1000 /* a DEALER closed after a GOODBYE flushes it this long at most */

typedef struct net_peer {
    void *dealer;              /* ctl DEALER to the peer's ROUTER; NULL when none */
    void *monitor;             /* PAIR receiving the DEALER's socket events */
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
    uint8_t server_key[KEYS_BINARY_SIZE]; /* CURVE: the key its ROUTER must prove */
    /* Written by the net thread holding node->lock; other threads read it holding the lock (the
     * net thread reads it without: it is the only writer). */
    net_peer_stats stats;
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
    void *user;
    int wake_fd; /* eventfd: any thread writes, the net thread reads */
    pthread_t thread;

    /* The net thread's. */
    void *ctx;
    void *router;
    zap_handler *zap; /* CURVE; zap_stats from any thread */
    unsigned monitor_sequence;
    bool closing;
    int64_t close_deadline_ns;

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
/* A new DEALER (and a new out_session) to stats.endpoint. SPOOL_ESYSTEM (logged) if not. */
int net_dealer_open(net_node *n, net_peer *p);
void net_dealer_close(net_node *n, net_peer *p, int linger_ms);
/* Sends one packet on the peer's DEALER, never waiting. */
void net_send(net_node *n, net_peer *p, const void *packet, int size);

/* net.c */
void net_say(char *err, size_t err_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
void net_log(const net_node *n, const char *format, ...) __attribute__((format(printf, 2, 3)));
int64_t net_now_ns(void);
uint64_t net_random64(void); /* never 0 */
void net_stat_add(net_node *n, uint64_t *counter, uint64_t amount);
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
void session_packet(net_node *n, zmq_msg_t *routing_id, zmq_msg_t *body, int64_t now);
/* Counts a dropped frame (and logs the first of each reason); `from` (may be NULL) is the peer
 * it is blamed on, `body` (may be NULL) where it came from. */
void session_malformed(net_node *n, net_peer *from, net_malformed reason, const char *words,
                       zmq_msg_t *body, int64_t now);
void session_monitor_event(net_node *n, net_peer *p, uint16_t event, uint32_t value, int64_t now);
void session_join(net_node *n, const char *name, const char *endpoint, int64_t now);
/* Sends what is due and ends silent sessions; returns the next deadline (INT64_MAX: none). */
int64_t session_timers(net_node *n, int64_t now);
void session_begin_close(net_node *n, int64_t now);

#endif
