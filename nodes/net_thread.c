/*
 * net_thread.c - the net thread of a node: it opens the ZeroMQ context, the ZAP handler and the
 * ROUTER, runs the zmq_poll loop over the eventfd, the ROUTER, the ZAP socket, every DEALER's
 * monitor and the data DEALERs that wait for room, opens and closes the peers' DEALERs, and closes
 * it all when the node stops. Every packet a node receives is read here and handed to session.c;
 * each peer's turn at writing is net_send.c's (net.h has the design).
 */
#include "nodes/net_internal.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Events of a DEALER that the session needs. */
#define NET_MONITOR_EVENTS                                                                         \
    (ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_DISCONNECTED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH |    \
     ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL)

/* An IPv6 host (ZMQ_IPV6 must then be on). */
static bool net_host_ipv6(const char *host) { return strchr(host, ':') != NULL; }

static int net_set_int(void *socket, int option, int value) {
    return zmq_setsockopt(socket, option, &value, sizeof value);
}

/* ---------------------------------------------------------------------------------------------- */
/* A peer's DEALER                                                                                */
/* ---------------------------------------------------------------------------------------------- */

/* One DEALER to the peer's ROUTER, with its monitor PAIR into *monitor; connected last, so the
 * monitor sees every event of the connection. NULL (logged) on failure. */
static void *net_dealer_socket(net_node *n, net_peer *p, const char *routing_id, int hwm,
                               void **monitor) {
    char host[NET_ENDPOINT_SIZE], port[16], err[256] = "";
    *monitor = NULL;
    void *dealer = zmq_socket(n->ctx, ZMQ_DEALER);
    if (dealer == NULL)
        goto fail;
    if (net_set_int(dealer, ZMQ_LINGER, 0) != 0 || net_set_int(dealer, ZMQ_SNDHWM, hwm) != 0 ||
        net_set_int(dealer, ZMQ_RCVHWM, 1) != 0 ||
        net_set_int(dealer, ZMQ_RECONNECT_IVL, NET_RECONNECT_MS) != 0 ||
        net_set_int(dealer, ZMQ_RECONNECT_IVL_MAX, NET_RECONNECT_MAX_MS) != 0 ||
        zmq_setsockopt(dealer, ZMQ_ROUTING_ID, routing_id, strlen(routing_id)) != 0)
        goto fail;
    if (net_endpoint_split(p->stats.endpoint, host, sizeof host, port, sizeof port) == 0 &&
        net_host_ipv6(host) && net_set_int(dealer, ZMQ_IPV6, 1) != 0)
        goto fail;
    if (!n->insecure && curve_client(dealer, &n->keys, p->server_key, err, sizeof err) != 0)
        goto fail;
    char monitor_endpoint[64];
    snprintf(monitor_endpoint, sizeof monitor_endpoint, "inproc://spool-net-monitor-%u",
             ++n->monitor_sequence);
    if (zmq_socket_monitor(dealer, monitor_endpoint, NET_MONITOR_EVENTS) != 0)
        goto fail;
    *monitor = zmq_socket(n->ctx, ZMQ_PAIR);
    if (*monitor == NULL || net_set_int(*monitor, ZMQ_LINGER, 0) != 0 ||
        zmq_connect(*monitor, monitor_endpoint) != 0)
        goto fail;
    if (zmq_connect(dealer, p->stats.endpoint) != 0)
        goto fail;
    return dealer;
fail:
    net_log(n, "cannot open a socket to %s at %s: %s", p->stats.name, p->stats.endpoint,
            err[0] ? err : zmq_strerror(errno));
    if (*monitor != NULL) {
        zmq_close(*monitor);
        *monitor = NULL;
    }
    if (dealer != NULL) {
        zmq_socket_monitor(dealer, NULL, 0);
        zmq_close(dealer);
    }
    return NULL;
}

static void net_socket_close(void **socket, void **monitor, int linger_ms) {
    if (*socket != NULL) {
        zmq_socket_monitor(*socket, NULL, 0);
        net_set_int(*socket, ZMQ_LINGER, linger_ms);
        zmq_close(*socket);
        *socket = NULL;
    }
    if (*monitor != NULL) {
        zmq_close(*monitor);
        *monitor = NULL;
    }
}

int net_dealer_open(net_node *n, net_peer *p) {
    p->out_session = net_random64();
    p->connected = false;
    p->next_hello_ns = 0;
    char data_id[NET_NAME_SIZE + sizeof NET_DATA_ID_SUFFIX];
    snprintf(data_id, sizeof data_id, "%s%s", n->name, NET_DATA_ID_SUFFIX);
    p->dealer = net_dealer_socket(n, p, n->name, NET_CTL_HWM, &p->monitor);
    if (p->dealer != NULL)
        p->data = net_dealer_socket(n, p, data_id, NET_DATA_HWM, &p->data_monitor);
    if (p->data == NULL) {
        net_socket_close(&p->dealer, &p->monitor, 0);
        return SPOOL_ESYSTEM;
    }
    return 0;
}

void net_dealer_close(net_node *n, net_peer *p, int linger_ms) {
    (void)n;
    net_socket_close(&p->dealer, &p->monitor, linger_ms);
    /* What the data DEALER still holds belongs to a session that is over. */
    net_socket_close(&p->data, &p->data_monitor, 0);
    p->connected = false;
    p->data_blocked = false;
}

void net_send(net_node *n, net_peer *p, const void *packet, int size) {
    if (p->dealer == NULL || size <= 0)
        return;
    /* Never blocks: a full queue (a peer that reads nothing) loses the packet, and a lost
     * heartbeat is what the silence timer is for. */
    if (zmq_send(p->dealer, packet, (size_t)size, ZMQ_DONTWAIT) == size)
        net_stat_add(n, &p->stats.bytes_out, (uint64_t)size);
}

/* Reads what a DEALER's monitor reported (`data`: the data DEALER's, else the ctl one's). */
static void net_read_monitor(net_node *n, net_peer *p, bool data, int64_t now) {
    void **slot = data ? &p->data_monitor : &p->monitor;
    void *monitor = *slot;
    /* Until it is empty, or closed by what an event did (the session ended: new sockets). */
    while (monitor != NULL && monitor == *slot) {
        zmq_msg_t event, address;
        zmq_msg_init(&event);
        if (zmq_msg_recv(&event, monitor, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&event);
            return;
        }
        uint16_t number = 0;
        uint32_t value = 0;
        if (zmq_msg_size(&event) >= 6) {
            memcpy(&number, zmq_msg_data(&event), 2);
            memcpy(&value, (const char *)zmq_msg_data(&event) + 2, 4);
        }
        /* the second frame (the endpoint) is there with the first */
        while (zmq_msg_more(&event)) {
            zmq_msg_init(&address);
            int rc = zmq_msg_recv(&address, monitor, 0);
            int more = rc >= 0 && zmq_msg_more(&address);
            zmq_msg_close(&address);
            if (!more)
                break;
        }
        zmq_msg_close(&event);
        session_monitor_event(n, p, data, number, value, now);
    }
}

/* Reads up to NET_RECEIVE_BATCH packets, NET_RECEIVE_BYTES, NET_RECEIVE_MESSAGES or NET_ROUND_NS
 * from the ROUTER. */
static void net_read_router(net_node *n, int64_t now) {
    size_t bytes = 0, messages = 0;
    int64_t stop = now + NET_ROUND_NS;
    for (int i = 0; i < NET_RECEIVE_BATCH && bytes < NET_RECEIVE_BYTES &&
                    messages < NET_RECEIVE_MESSAGES && (i == 0 || net_now_ns() < stop);
         i++) {
        zmq_msg_t id, body;
        zmq_msg_init(&id);
        if (zmq_msg_recv(&id, n->router, ZMQ_DONTWAIT) < 0) {
            zmq_msg_close(&id);
            return;
        }
        if (!zmq_msg_more(&id)) { /* a ROUTER always gives the routing id first: never expected */
            zmq_msg_close(&id);
            session_malformed(n, NULL, NET_MALFORMED_FRAMES, "a message without body", NULL, now);
            continue;
        }
        zmq_msg_init(&body);
        /* ZeroMQ delivers a message whole: the rest is there. */
        if (zmq_msg_recv(&body, n->router, 0) < 0) {
            zmq_msg_close(&body);
            zmq_msg_close(&id);
            return;
        }
        size_t extra = 0;
        bool more = zmq_msg_more(&body);
        while (more) {
            zmq_msg_t frame;
            zmq_msg_init(&frame);
            more = zmq_msg_recv(&frame, n->router, 0) >= 0 && zmq_msg_more(&frame);
            zmq_msg_close(&frame);
            extra++;
        }
        if (extra) {
            char words[64];
            snprintf(words, sizeof words, "%zu frames after the routing id, want 1", extra + 1);
            session_malformed(n, NULL, NET_MALFORMED_FRAMES, words, &body, now);
        } else {
            bytes += zmq_msg_size(&body);
            messages += session_packet(n, &id, &body, now);
        }
        zmq_msg_close(&body);
        zmq_msg_close(&id);
    }
}

/* The joins and the stop asked by other threads. */
static void net_take_commands(net_node *n, int64_t now) {
    uint64_t count;
    while (read(n->wake_fd, &count, sizeof count) > 0) {
    }
    net_join_request joins[NET_PENDING_JOINS];
    pthread_mutex_lock(&n->lock);
    size_t join_count = n->join_count;
    memcpy(joins, n->joins, join_count * sizeof joins[0]);
    n->join_count = 0;
    bool stop = n->stopping;
    pthread_mutex_unlock(&n->lock);
    if (stop) {
        if (!n->closing)
            session_begin_close(n, now);
        return;
    }
    for (size_t i = 0; i < join_count; i++)
        session_join(n, joins[i].name, joins[i].endpoint, now);
}

/* Whether destroy may close everything now: every peer in session answered GOODBYE, or the wait
 * is over. */
static bool net_close_done(net_node *n, int64_t now) {
    if (now >= n->close_deadline_ns)
        return true;
    for (size_t i = 0; i < n->peer_count; i++)
        if (n->peers[i]->goodbye_awaited)
            return false;
    return true;
}

/* Whether the loop may sleep: nothing to write now. Before it says so it marks every queue idle
 * (but those waiting for POLLOUT: that wakes it) and looks at the queues again, so a send either
 * is seen here or sees the mark and wakes the thread. */
static bool net_may_sleep(net_node *n) {
    for (size_t i = 0; i < n->peer_count; i++)
        if (net_data_ready(n->peers[i]))
            return false;
    for (size_t i = 0; i < n->peer_count; i++) {
        int idle = n->peers[i]->data_blocked ? 0 : 1;
        if (pr_load_int(&n->peers[i]->idle) != idle)
            pr_store_int(&n->peers[i]->idle, idle);
    }
    /* The marks, then the queues' heads (a send: its exchange of the head, then the mark). */
    pr_fence_seq_cst();
    for (size_t i = 0; i < n->peer_count; i++)
        if (net_data_ready(n->peers[i]))
            return false;
    return true;
}

/* What one poll item is for. */
typedef enum net_watch { NET_WATCH_MONITOR, NET_WATCH_DATA_MONITOR, NET_WATCH_ROOM } net_watch;

static void net_run(net_node *n) {
    zmq_pollitem_t items[3 + 3 * NET_MAX_PEERS];
    struct {
        net_peer *peer;
        net_watch what;
    } watched[3 * NET_MAX_PEERS];
    for (;;) {
        int64_t now = net_now_ns();
        int64_t deadline = session_timers(n, now);
        if (n->closing) {
            if (net_close_done(n, now))
                return;
            deadline = n->close_deadline_ns;
        }
        size_t count = 0, watches = 0;
        items[count++] = (zmq_pollitem_t){NULL, n->wake_fd, ZMQ_POLLIN, 0};
        items[count++] = (zmq_pollitem_t){n->router, 0, ZMQ_POLLIN, 0};
        if (n->zap != NULL)
            items[count++] = (zmq_pollitem_t){zap_socket(n->zap), 0, ZMQ_POLLIN, 0};
        size_t first_watch = count;
        for (size_t i = 0; i < n->peer_count; i++) {
            net_peer *p = n->peers[i];
            if (p->monitor != NULL) {
                watched[watches].peer = p;
                watched[watches++].what = NET_WATCH_MONITOR;
                items[count++] = (zmq_pollitem_t){p->monitor, 0, ZMQ_POLLIN, 0};
            }
            if (p->data_monitor != NULL) {
                watched[watches].peer = p;
                watched[watches++].what = NET_WATCH_DATA_MONITOR;
                items[count++] = (zmq_pollitem_t){p->data_monitor, 0, ZMQ_POLLIN, 0};
            }
            if (p->data != NULL && p->data_blocked) { /* only while a packet waits for room */
                watched[watches].peer = p;
                watched[watches++].what = NET_WATCH_ROOM;
                items[count++] = (zmq_pollitem_t){p->data, 0, ZMQ_POLLOUT, 0};
            }
        }
        long timeout = -1;
        if (!n->closing && !net_may_sleep(n)) {
            timeout = 0;
        } else if (deadline != INT64_MAX) {
            int64_t wait = deadline - now;
            timeout = wait <= 0 ? 0 : (long)((wait + 999999) / 1000000);
        }
        int rc = zmq_poll(items, (int)count, timeout);
        if (rc < 0) {
            if (errno == EINTR)
                continue;
            net_log(n, "zmq_poll failed: %s; stopping the node's network", zmq_strerror(errno));
            return;
        }
        now = net_now_ns();
        if (items[0].revents & ZMQ_POLLIN)
            net_take_commands(n, now);
        if (n->zap != NULL && (items[2].revents & ZMQ_POLLIN)) {
            int served;
            while ((served = zap_serve_one(n->zap)) == 0) {
            }
            if (served != SPOOL_ETIMEDOUT)
                net_log(n, "the ZAP handler failed (%d)", served);
        }
        /* The ROUTER before the monitors: what a peer sent before its connection closed counts
         * first (its GOODBYE, say). */
        if (items[1].revents & ZMQ_POLLIN)
            net_read_router(n, now);
        for (size_t i = 0; i < watches; i++) {
            net_peer *p = watched[i].peer;
            short revents = items[first_watch + i].revents;
            if (watched[i].what == NET_WATCH_ROOM) {
                /* the socket may be gone (a session ended above): then nothing is blocked */
                if (revents & ZMQ_POLLOUT)
                    p->data_blocked = false;
            } else if (revents & ZMQ_POLLIN) {
                net_read_monitor(n, p, watched[i].what == NET_WATCH_DATA_MONITOR, now);
            }
        }
        if (!n->closing && n->peer_count > 0) {
            int64_t stop = net_now_ns() + NET_ROUND_NS;
            size_t first = n->first_turn++ % n->peer_count;
            for (size_t k = 0; k < n->peer_count; k++)
                net_data_turn(n, n->peers[(first + k) % n->peer_count], stop);
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* The thread: open, run, close                                                                   */
/* ---------------------------------------------------------------------------------------------- */

/* The context, the ZAP handler and the bound ROUTER. On error everything opened is closed. */
static int net_open(net_node *n, char *err, size_t err_size) {
    char host[NET_ENDPOINT_SIZE], port[16], bind_to[NET_ENDPOINT_SIZE + 32];
    net_endpoint_split(n->listen, host, sizeof host, port, sizeof port); /* checked at create */
    /* zmq_bind takes addresses and interface names, not host names */
    snprintf(bind_to, sizeof bind_to, "tcp://%s:%s",
             strcmp(host, "localhost") == 0 ? "127.0.0.1" : host, port);
    int rc = 0;
    n->ctx = zmq_ctx_new();
    if (n->ctx == NULL) {
        net_say(err, err_size, "cannot make a ZeroMQ context: %s", zmq_strerror(errno));
        return SPOOL_ESYSTEM;
    }
    /* Each peer costs six sockets (two DEALERs, the monitors libzmq binds for them, the PAIRs
     * reading those), and a DEALER closed after a GOODBYE lingers a while: room for all of them. */
    zmq_ctx_set(n->ctx, ZMQ_MAX_SOCKETS, 8 * NET_MAX_PEERS + 16);
    if (!n->insecure && (rc = zap_open(n->ctx, n->allow, &n->zap, err, err_size)) != 0)
        goto fail;
    n->router = zmq_socket(n->ctx, ZMQ_ROUTER);
    int64_t max_size = NET_MAX_FRAME; /* larger: libzmq drops the connection */
    if (n->router == NULL || net_set_int(n->router, ZMQ_LINGER, 0) != 0 ||
        net_set_int(n->router, ZMQ_ROUTER_HANDOVER, 1) != 0 ||
        net_set_int(n->router, ZMQ_RCVHWM, NET_ROUTER_HWM) != 0 ||
        zmq_setsockopt(n->router, ZMQ_MAXMSGSIZE, &max_size, sizeof max_size) != 0 ||
        (net_host_ipv6(host) && net_set_int(n->router, ZMQ_IPV6, 1) != 0)) {
        net_say(err, err_size, "cannot make the ROUTER: %s", zmq_strerror(errno));
        rc = SPOOL_ESYSTEM;
        goto fail;
    }
    if (!n->insecure && (rc = curve_server(n->router, &n->keys, err, err_size)) != 0)
        goto fail;
    if (zmq_bind(n->router, bind_to) != 0) {
        net_say(err, err_size, "cannot listen on %s: %s", n->listen, zmq_strerror(errno));
        rc = SPOOL_ESYSTEM;
        goto fail;
    }
    size_t size = sizeof n->endpoint;
    if (zmq_getsockopt(n->router, ZMQ_LAST_ENDPOINT, n->endpoint, &size) != 0) {
        net_say(err, err_size, "cannot read the bound endpoint: %s", zmq_strerror(errno));
        rc = SPOOL_ESYSTEM;
        goto fail;
    }
    return 0;
fail:
    if (n->router != NULL)
        zmq_close(n->router);
    n->router = NULL;
    zap_close(&n->zap);
    zmq_ctx_term(n->ctx);
    n->ctx = NULL;
    return rc;
}

static void net_close_all(net_node *n) {
    for (size_t i = 0; i < n->peer_count; i++) {
        net_dealer_close(n, n->peers[i], 0);
        net_data_reset(n, n->peers[i], NET_UNDELIVERED_SHUTDOWN);
        session_receive_reset(n, n->peers[i]);
    }
    zmq_close(n->router);
    n->router = NULL;
    zap_close(&n->zap);
    zmq_ctx_term(n->ctx);
    n->ctx = NULL;
}

void *net_thread_main(void *argument) {
    net_node *n = argument;
    char err[256] = "";
    int rc = net_open(n, err, sizeof err);
    pthread_mutex_lock(&n->lock);
    n->start_status = rc;
    snprintf(n->start_error, sizeof n->start_error, "%s", err);
    n->start_done = true;
    pthread_cond_signal(&n->started);
    pthread_mutex_unlock(&n->lock);
    if (rc != 0)
        return NULL;
    net_run(n);
    net_close_all(n);
    return NULL;
}
