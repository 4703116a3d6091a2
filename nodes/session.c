/*
 * session.c - a peer's session as the net thread sees it: the three-legged handshake (HELLO,
 * WELCOME, the first HEARTBEAT), heartbeats and their acknowledgements, the ways a session ends
 * (GOODBYE, a closed connection, silence, a new incarnation or session, a protocol error), the
 * events each step raises, and the receiving half of the data path (DATA and FRAGMENT: sequence
 * numbers, reassembly, on_message). Every packet a node receives passes session_packet after the
 * ROUTER. Net thread only; the design is in net.h.
 */
#include "nodes/net_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* Sending                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static void send_hello(net_node *n, net_peer *p, wire_kind kind) {
    wire_hello hello = {.cluster = n->cluster,
                        .incarnation = n->incarnation,
                        .session = p->out_session,
                        .heartbeat_ms = n->heartbeat_ms,
                        .max_message = (uint32_t)n->max_message,
                        .echo_session = p->in_session};
    memcpy(hello.name, n->name, sizeof hello.name);
    memcpy(hello.endpoint, n->endpoint, sizeof hello.endpoint);
    unsigned char packet[WIRE_HEADER_SIZE + WIRE_WELCOME_FIXED + NET_NAME_SIZE + NET_ENDPOINT_SIZE];
    net_send(n, p, packet, wire_hello_write(packet, sizeof packet, kind, &hello));
}

static void send_heartbeat(net_node *n, net_peer *p, wire_kind kind, uint64_t sent_ns) {
    wire_heartbeat heartbeat = {
        .session = p->out_session, .sent_ns = sent_ns, .last_seq_received = p->recv_seq - 1};
    unsigned char packet[WIRE_HEADER_SIZE + WIRE_HEARTBEAT_BODY];
    net_send(n, p, packet, wire_heartbeat_write(packet, sizeof packet, kind, &heartbeat));
}

static void send_goodbye(net_node *n, net_peer *p, const char *reason) {
    wire_goodbye goodbye = {
        .session = p->out_session, .reason = reason, .reason_len = strlen(reason)};
    unsigned char packet[WIRE_HEADER_SIZE + WIRE_GOODBYE_FIXED + WIRE_REASON_MAX];
    net_send(n, p, packet, wire_goodbye_write(packet, sizeof packet, &goodbye));
}

/* Tells p the peers this node has in session (but p), in as many packets as they take: how a node
 * that joined one member meets the others. */
static void send_members(net_node *n, net_peer *p) {
    unsigned char packet[NET_MEMBERS_PACKET];
    wire_members_builder builder;
    wire_members_begin(&builder, packet, sizeof packet, p->out_session);
    for (size_t i = 0; i < n->peer_count; i++) {
        net_peer *member = n->peers[i];
        if (member == p || member->stats.state != NET_PEER_UP)
            continue;
        int rc = wire_members_add(&builder, member->stats.name, member->stats.endpoint);
        if (rc == SPOOL_EFULL) {
            net_send(n, p, packet, wire_members_end(&builder));
            wire_members_begin(&builder, packet, sizeof packet, p->out_session);
            rc = wire_members_add(&builder, member->stats.name, member->stats.endpoint);
        }
    }
    if (builder.count > 0)
        net_send(n, p, packet, wire_members_end(&builder));
}

/* ---------------------------------------------------------------------------------------------- */
/* Going up and down                                                                              */
/* ---------------------------------------------------------------------------------------------- */

static void emit(net_node *n, net_event_kind kind, net_peer *p, const char *reason) {
    if (n->on_event == NULL)
        return;
    net_event event = {kind, p->stats.name, p->stats.incarnation, reason, p};
    n->on_event(n->user, &event);
}

static void set_state(net_node *n, net_peer *p, net_peer_state state) {
    pthread_mutex_lock(&n->lock);
    if (state == NET_PEER_UP)
        p->stats.ups++;
    else if (p->stats.state == NET_PEER_UP)
        p->stats.downs++;
    p->stats.state = state;
    pthread_mutex_unlock(&n->lock);
}

/* The heartbeat of the session, now. */
static void heartbeat_now(net_node *n, net_peer *p, int64_t now) {
    send_heartbeat(n, p, WIRE_HEARTBEAT, (uint64_t)now);
    net_stat_add(n, &p->stats.heartbeats_sent, 1);
    p->last_heartbeat_ns = now;
    p->next_heartbeat_ns = now + (int64_t)n->heartbeat_ms * 1000000;
}

static void session_up(net_node *n, net_peer *p, int64_t now) {
    set_state(n, p, NET_PEER_UP);
    p->last_heard_ns = now;
    p->miss_logged = false;
    net_data_up(n, p); /* sends from on_event's NODE_UP are taken */
    emit(n, NET_NODE_UP, p, NULL);
    /* A heartbeat at once, before anything else: for an acceptor it is the handshake's third
     * leg, and what follows it on the DEALER (MEMBERS) finds the peer UP. */
    heartbeat_now(n, p, now);
    send_members(n, p);
}

/* Frees the message being reassembled. */
static void drop_assembly(net_node *n, net_peer *p) {
    memory_free(&n->allocator, p->assembly, p->assembly_size);
    p->assembly = NULL;
    p->assembly_seq = p->assembly_size = p->assembly_offset = 0;
}

void session_receive_reset(net_node *n, net_peer *p) {
    drop_assembly(n, p);
    p->recv_seq = 1;
}

/* Forgets the peer's session; the DEALERs are closed by the caller. */
static void forget_session(net_node *n, net_peer *p) {
    p->have_hello = false;
    p->in_session = 0;
    p->miss_logged = false;
    session_receive_reset(n, p);
}

/* The peer's session is `session` from now on: a new one starts its messages from seq 1. */
static void take_session(net_node *n, net_peer *p, uint64_t session) {
    if (p->in_session != session)
        session_receive_reset(n, p);
    p->in_session = session;
}

/* The session ends for `reason` and a new one is tried at once, on new DEALERs: whatever was
 * written to the old ones and not yet sent is dropped with them; what was still queued comes back
 * (on_undelivered NODE_DOWN), after the event. */
static void session_down(net_node *n, net_peer *p, const char *reason, int64_t now) {
    (void)now;
    bool was_up = p->stats.state == NET_PEER_UP;
    net_data_unpublish(n, p);
    net_dealer_close(n, p, 0);
    forget_session(n, p);
    set_state(n, p, NET_PEER_JOINING);
    if (was_up) {
        net_log(n, "%s is down: %s", p->stats.name, reason);
        emit(n, NET_NODE_DOWN, p, reason);
    }
    net_data_reset(n, p, NET_UNDELIVERED_NODE_DOWN);
    net_dealer_open(n, p);
}

/* The peer said GOODBYE: DOWN (if it was UP), then answer GOODBYE on the ctl DEALER, which is then
 * closed (flushing the answer in the background) and not opened again. The event comes first, so
 * the peer's destroy returns only after this node has told its user. */
static void session_goodbye(net_node *n, net_peer *p) {
    bool was_up = p->stats.state == NET_PEER_UP;
    net_data_unpublish(n, p);
    set_state(n, p, NET_PEER_DOWN);
    if (was_up)
        emit(n, NET_NODE_DOWN, p, "goodbye");
    net_data_reset(n, p, NET_UNDELIVERED_NODE_DOWN);
    send_goodbye(n, p, "goodbye");
    net_dealer_close(n, p, NET_GOODBYE_LINGER_MS);
    forget_session(n, p);
}

/* ---------------------------------------------------------------------------------------------- */
/* Bad input                                                                                      */
/* ---------------------------------------------------------------------------------------------- */

static net_malformed classify(int rc, const char *words) {
    if (rc == SPOOL_EMSGSIZE)
        return NET_MALFORMED_TOO_LARGE;
    static const char *const header[] = {"bad magic", "unsupported protocol version",
                                         "unknown packet kind", "reserved header flags"};
    for (size_t i = 0; i < sizeof header / sizeof header[0]; i++)
        if (strncmp(words, header[i], strlen(header[i])) == 0)
            return NET_MALFORMED_BAD_HEADER;
    if (strncmp(words, "truncated", 9) == 0)
        return NET_MALFORMED_TRUNCATED;
    return NET_MALFORMED_INVALID;
}

void session_malformed(net_node *n, net_peer *from, net_malformed reason, const char *words,
                       zmq_msg_t *body, int64_t now) {
    pthread_mutex_lock(&n->lock);
    uint64_t seen = n->malformed[reason]++;
    pthread_mutex_unlock(&n->lock);
    if (seen == 0) {
        const char *address = body != NULL ? zmq_msg_gets(body, "Peer-Address") : NULL;
        net_log(n, "dropped a packet from %s: %s (counted as %s; the next ones only counted)",
                address != NULL ? address : "?", words, net_malformed_name(reason));
    }
    if (from != NULL && from->stats.state == NET_PEER_UP && !n->closing) {
        char reason_words[200];
        snprintf(reason_words, sizeof reason_words, "protocol error: %s", words);
        session_down(n, from, reason_words, now);
    }
}

static void count_stale(net_node *n) { net_stat_add(n, &n->stale, 1); }

/* ---------------------------------------------------------------------------------------------- */
/* Packets                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

/* The endpoint to answer a HELLO on: its own, with a wildcard host replaced by the address the
 * packet came from. Empty when that cannot be made, or when an insecure node would have to leave
 * the loopback for it (plain connections stay on the machine). */
static void answer_endpoint(net_node *n, const char *claimed, zmq_msg_t *body, char *out,
                            size_t out_size) {
    char host[NET_ENDPOINT_SIZE], port[16];
    out[0] = '\0';
    if (net_endpoint_split(claimed, host, sizeof host, port, sizeof port) != 0 ||
        strcmp(port, "*") == 0 || strcmp(port, "0") == 0 ||
        (n->insecure && !net_host_loopback(host)))
        return;
    if (!net_host_wildcard(host)) {
        snprintf(out, out_size, "%s", claimed);
        return;
    }
    const char *address = zmq_msg_gets(body, "Peer-Address");
    if (address == NULL)
        return;
    int written = strchr(address, ':') != NULL
                      ? snprintf(out, out_size, "tcp://[%s]:%s", address, port)
                      : snprintf(out, out_size, "tcp://%s:%s", address, port);
    if (written < 0 || (size_t)written >= out_size || written > WIRE_ENDPOINT_MAX)
        out[0] = '\0';
}

static void set_endpoint(net_node *n, net_peer *p, const char *endpoint) {
    pthread_mutex_lock(&n->lock);
    snprintf(p->stats.endpoint, sizeof p->stats.endpoint, "%s", endpoint);
    pthread_mutex_unlock(&n->lock);
}

static void set_incarnation(net_node *n, net_peer *p, uint64_t incarnation) {
    pthread_mutex_lock(&n->lock);
    p->stats.incarnation = incarnation;
    pthread_mutex_unlock(&n->lock);
}

static void on_hello(net_node *n, net_peer *p, const wire_hello *hello, zmq_msg_t *body,
                     int64_t now) {
    char endpoint[NET_ENDPOINT_SIZE];
    answer_endpoint(n, hello->endpoint, body, endpoint, sizeof endpoint);
    if (endpoint[0] == '\0') {
        char words[NET_ENDPOINT_SIZE + 64];
        snprintf(words, sizeof words, "a HELLO from an endpoint this node cannot answer: %s",
                 hello->endpoint);
        session_malformed(n, NULL, NET_MALFORMED_INVALID, words, body, now);
        return;
    }
    if (p == NULL && (p = net_peer_add(n, hello->name, endpoint)) == NULL) {
        session_malformed(n, NULL, NET_MALFORMED_TOO_MANY_PEERS, hello->name, body, now);
        return;
    }
    if (p->stats.state == NET_PEER_UP) {
        if (hello->incarnation != p->stats.incarnation) {
            session_down(n, p, "incarnation changed", now);
        } else if (hello->session != p->in_session) {
            session_down(n, p, "session restarted", now);
        } else { /* its HELLO again (it resends while it has no session): answer again */
            send_hello(n, p, WIRE_WELCOME);
            return;
        }
    }
    /* A DEALER that never got through, to an endpoint the peer no longer claims: follow it. One
     * that is connected stays: it demonstrably reaches the peer. */
    if (strcmp(p->stats.endpoint, endpoint) != 0 && !p->connected) {
        net_dealer_close(n, p, 0);
        set_endpoint(n, p, endpoint);
    }
    if (p->stats.state == NET_PEER_DOWN)
        set_state(n, p, NET_PEER_JOINING);
    if (p->dealer == NULL && net_dealer_open(n, p) != 0)
        return;
    take_session(n, p, hello->session);
    p->max_message = hello->max_message;
    p->have_hello = true;
    set_incarnation(n, p, hello->incarnation);
    send_hello(n, p, WIRE_WELCOME);
}

static void on_welcome(net_node *n, net_peer *p, const wire_hello *welcome, int64_t now) {
    if (p == NULL || p->dealer == NULL || welcome->echo_session != p->out_session) {
        count_stale(n); /* an answer to a HELLO of a session given up since */
        return;
    }
    if (p->stats.state == NET_PEER_UP) {
        if (welcome->incarnation != p->stats.incarnation)
            session_down(n, p, "incarnation changed", now);
        else if (welcome->session != p->in_session)
            session_down(n, p, "session restarted", now);
        return; /* else a second answer to the same HELLO */
    }
    take_session(n, p, welcome->session);
    p->max_message = welcome->max_message;
    p->have_hello = true;
    set_incarnation(n, p, welcome->incarnation);
    session_up(n, p, now);
}

static void on_heartbeat(net_node *n, net_peer *p, const wire_heartbeat *heartbeat, int64_t now) {
    if (p == NULL || !p->have_hello || heartbeat->session != p->in_session) {
        count_stale(n);
        return;
    }
    p->last_heard_ns = now;
    net_stat_add(n, &p->stats.heartbeats_received, 1);
    if (p->stats.state == NET_PEER_JOINING) /* the third leg: it got our WELCOME */
        session_up(n, p, now);
    send_heartbeat(n, p, WIRE_HEARTBEAT_ACK, heartbeat->sent_ns);
}

static void on_ack(net_node *n, net_peer *p, const wire_heartbeat *ack, int64_t now) {
    if (p == NULL || p->stats.state != NET_PEER_UP || ack->session != p->in_session) {
        count_stale(n);
        return;
    }
    p->last_heard_ns = now;
    uint64_t rtt =
        ack->sent_ns > 0 && ack->sent_ns <= (uint64_t)now ? (uint64_t)now - ack->sent_ns : 0;
    pthread_mutex_lock(&n->lock);
    p->stats.acks_received++;
    p->stats.rtt_ns = rtt;
    pthread_mutex_unlock(&n->lock);
}

static void on_goodbye(net_node *n, net_peer *p, const wire_goodbye *goodbye) {
    if (p == NULL || !p->have_hello || goodbye->session != p->in_session) {
        count_stale(n);
        return;
    }
    if (n->closing) {
        p->goodbye_awaited = false; /* its answer to ours, or its own: either way it is done */
        return;
    }
    session_goodbye(n, p);
}

/* The members a peer in session named: join those this node does not know. (Under CURVE only the
 * names it has a key for, insecure only on loopback: what a join would refuse.) */
static void on_members(net_node *n, net_peer *p, wire_packet *packet, int64_t now) {
    if (p == NULL || !p->have_hello || packet->members.session != p->in_session) {
        count_stale(n);
        return;
    }
    p->last_heard_ns = now;
    if (p->stats.state == NET_PEER_JOINING) /* only a peer UP sends it: a third leg too */
        session_up(n, p, now);
    wire_member member;
    while (wire_members_next(packet, &member, NULL, 0) == 1) {
        if (strcmp(member.name, n->name) == 0 || net_peer_find(n, member.name) != NULL)
            continue;
        char host[NET_ENDPOINT_SIZE], port[16];
        if (net_endpoint_split(member.endpoint, host, sizeof host, port, sizeof port) != 0 ||
            net_host_wildcard(host) || (n->insecure && !net_host_loopback(host)) ||
            (!n->insecure && !net_allowed(n, member.name)))
            continue;
        net_stat_add(n, &n->discovered, 1);
        session_join(n, member.name, member.endpoint, now);
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* The data path: receiving                                                                       */
/* ---------------------------------------------------------------------------------------------- */

/* Whether a DATA or FRAGMENT of `session` belongs to p's session, which it then proves alive (and
 * UP: from an acceptor's side it is a third leg, like HEARTBEAT). Else counted stale. */
static bool data_session(net_node *n, net_peer *p, uint64_t session, int64_t now) {
    if (p == NULL || !p->have_hello || session != p->in_session) {
        count_stale(n);
        return false;
    }
    p->last_heard_ns = now;
    if (p->stats.state == NET_PEER_JOINING)
        session_up(n, p, now);
    return p->stats.state == NET_PEER_UP;
}

static void sequence_error(net_node *n, net_peer *p, zmq_msg_t *body, int64_t now,
                           const char *format, ...) __attribute__((format(printf, 5, 6)));

/* Ends p's session: a packet out of sequence. */
static void sequence_error(net_node *n, net_peer *p, zmq_msg_t *body, int64_t now,
                           const char *format, ...) {
    char words[160];
    va_list args;
    va_start(args, format);
    vsnprintf(words, sizeof words, format, args);
    va_end(args);
    session_malformed(n, p, NET_MALFORMED_SEQUENCE, words, body, now);
}

static void count_received(net_node *n, net_peer *p, uint64_t messages, uint64_t fragments) {
    pthread_mutex_lock(&n->lock);
    p->stats.messages_in += messages;
    p->stats.fragments_in += fragments;
    p->stats.last_seq_received = p->recv_seq - 1;
    pthread_mutex_unlock(&n->lock);
}

static void deliver(net_node *n, net_peer *p, const wire_msg *msg) {
    if (n->on_message != NULL)
        n->on_message(n->user, p, p->stats.incarnation, msg);
}

static size_t on_data(net_node *n, net_peer *p, wire_packet *packet, zmq_msg_t *body, int64_t now) {
    if (!data_session(n, p, packet->data.session, now))
        return 0;
    if (packet->data.first_seq != p->recv_seq) {
        sequence_error(n, p, body, now, "DATA of seq %llu, want %llu",
                       (unsigned long long)packet->data.first_seq, (unsigned long long)p->recv_seq);
        return 0;
    }
    p->recv_seq += packet->data.count; /* wire_parse refused a count that wraps */
    wire_msg msg;
    uint64_t delivered = 0;
    while (wire_data_next(packet, &msg, NULL, 0) == 1) {
        deliver(n, p, &msg);
        delivered++;
    }
    count_received(n, p, delivered, 0);
    return delivered;
}

static bool same_header(const wire_msg *a, const wire_msg *b) {
    return a->to == b->to && a->from == b->from && a->type == b->type && a->flags == b->flags &&
           a->request_id == b->request_id;
}

/* A FRAGMENT: the first piece of a message (offset 0) takes the next seq and opens the one
 * reassembly; each next piece must continue it exactly. */
static size_t on_fragment(net_node *n, net_peer *p, const wire_fragment *f, zmq_msg_t *body,
                          int64_t now) {
    if (!data_session(n, p, f->session, now))
        return 0;
    if (f->offset == 0) {
        if (p->assembly != NULL) {
            sequence_error(n, p, body, now, "FRAGMENT of seq %llu while seq %llu is open",
                           (unsigned long long)f->seq, (unsigned long long)p->assembly_seq);
            return 0;
        }
        if (f->seq != p->recv_seq) {
            sequence_error(n, p, body, now, "FRAGMENT of seq %llu, want %llu",
                           (unsigned long long)f->seq, (unsigned long long)p->recv_seq);
            return 0;
        }
        p->recv_seq++;
        if (f->piece_size == f->total_size) { /* one piece: nothing to reassemble */
            wire_msg msg = f->header;
            msg.data = f->piece;
            msg.size = f->piece_size;
            deliver(n, p, &msg);
            count_received(n, p, 1, 1);
            return 1;
        }
        /* total_size <= max_message (wire_parse's limit): this node's own bound */
        p->assembly = memory_alloc(&n->allocator, (size_t)f->total_size);
        if (p->assembly == NULL) {
            net_log(n, "no memory to reassemble a message of %llu bytes from %s",
                    (unsigned long long)f->total_size, p->stats.name);
            session_down(n, p, "out of memory", now);
            return 0;
        }
        p->assembly_header = f->header;
        p->assembly_seq = f->seq;
        p->assembly_size = f->total_size;
        p->assembly_offset = 0;
    } else if (p->assembly == NULL) {
        sequence_error(n, p, body, now,
                       "FRAGMENT of seq %llu at %llu of %llu bytes: no message open",
                       (unsigned long long)f->seq, (unsigned long long)f->offset,
                       (unsigned long long)f->total_size);
        return 0;
    } else if (f->seq != p->assembly_seq || f->total_size != p->assembly_size ||
               f->offset != p->assembly_offset || !same_header(&f->header, &p->assembly_header)) {
        sequence_error(n, p, body, now,
                       "FRAGMENT of seq %llu at %llu of %llu bytes does not continue seq %llu "
                       "(%llu of %llu bytes)",
                       (unsigned long long)f->seq, (unsigned long long)f->offset,
                       (unsigned long long)f->total_size, (unsigned long long)p->assembly_seq,
                       (unsigned long long)p->assembly_offset,
                       (unsigned long long)p->assembly_size);
        return 0;
    }
    memcpy(p->assembly + f->offset, f->piece, f->piece_size);
    p->assembly_offset += f->piece_size;
    if (p->assembly_offset < p->assembly_size) {
        count_received(n, p, 0, 1);
        return 0;
    }
    wire_msg msg = p->assembly_header;
    msg.data = p->assembly;
    msg.size = (uint32_t)p->assembly_size;
    deliver(n, p, &msg);
    count_received(n, p, 1, 1);
    drop_assembly(n, p);
    return 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Who sent it, and what it does                                                                  */
/* ---------------------------------------------------------------------------------------------- */

/* Who sent it: under CURVE the name the ZAP handler gave its key; insecure, its routing id when
 * that is a node name, or a node name and NET_DATA_ID_SUFFIX (every node's ctl DEALER uses its
 * name, its data DEALER that). "" when neither. */
static void sender_name(net_node *n, zmq_msg_t *routing_id, zmq_msg_t *body, char *out) {
    out[0] = '\0';
    if (!n->insecure) {
        if (zap_peer_name(body, out, NET_NAME_SIZE) != 0)
            out[0] = '\0';
        return;
    }
    size_t size = zmq_msg_size(routing_id);
    const size_t suffix = sizeof NET_DATA_ID_SUFFIX - 1;
    if (size > suffix && memcmp((const char *)zmq_msg_data(routing_id) + size - suffix,
                                NET_DATA_ID_SUFFIX, suffix) == 0)
        size -= suffix;
    if (size == 0 || size > WIRE_NAME_MAX)
        return;
    memcpy(out, zmq_msg_data(routing_id), size);
    out[size] = '\0';
    if (keys_name_check(out, NULL, 0) != 0)
        out[0] = '\0';
}

size_t session_packet(net_node *n, zmq_msg_t *routing_id, zmq_msg_t *body, int64_t now) {
    char sender[NET_NAME_SIZE];
    sender_name(n, routing_id, body, sender);
    net_peer *p = sender[0] ? net_peer_find(n, sender) : NULL;
    size_t size = zmq_msg_size(body);
    if (p != NULL)
        net_stat_add(n, &p->stats.bytes_in, size);

    wire_packet packet;
    char words[160];
    /* This node's own max_message bounds what it takes (and reassembles). */
    wire_limits limits = {.max_packet = 0, .max_message = n->max_message};
    int rc = wire_parse(zmq_msg_data(body), size, &limits, &packet, words, sizeof words);
    if (rc != 0) {
        session_malformed(n, p, classify(rc, words), words, body, now);
        return 0;
    }
    if (n->closing) { /* only the answers to our GOODBYE matter now */
        if (packet.kind == WIRE_GOODBYE)
            on_goodbye(n, p, &packet.goodbye);
        return 0;
    }
    switch (packet.kind) {
    case WIRE_HELLO:
    case WIRE_WELCOME:
        if (packet.hello.cluster != n->cluster) {
            session_malformed(n, NULL, NET_MALFORMED_WRONG_CLUSTER, packet.hello.name, body, now);
        } else if (strcmp(packet.hello.name, sender) != 0 ||
                   strcmp(packet.hello.name, n->name) == 0) {
            char claim[2 * NET_NAME_SIZE + 64];
            snprintf(claim, sizeof claim, "\"%s\" from a connection of \"%s\"", packet.hello.name,
                     sender);
            session_malformed(n, NULL, NET_MALFORMED_WRONG_NAME, claim, body, now);
        } else if (packet.kind == WIRE_HELLO) {
            on_hello(n, p, &packet.hello, body, now);
        } else {
            on_welcome(n, p, &packet.hello, now);
        }
        break;
    case WIRE_HEARTBEAT:
        on_heartbeat(n, p, &packet.heartbeat, now);
        break;
    case WIRE_HEARTBEAT_ACK:
        on_ack(n, p, &packet.heartbeat, now);
        break;
    case WIRE_GOODBYE:
        on_goodbye(n, p, &packet.goodbye);
        break;
    case WIRE_MEMBERS:
        on_members(n, p, &packet, now);
        break;
    case WIRE_DATA:
        return on_data(n, p, &packet, body, now);
    case WIRE_FRAGMENT:
        return on_fragment(n, p, &packet.fragment, body, now);
    }
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Socket events, joins, timers, closing                                                          */
/* ---------------------------------------------------------------------------------------------- */

void session_monitor_event(net_node *n, net_peer *p, bool data, uint16_t event, uint32_t value,
                           int64_t now) {
    if (data) { /* the data DEALER: its connection closing ends the session too */
        if (event == ZMQ_EVENT_DISCONNECTED && !n->closing && p->stats.state == NET_PEER_UP)
            session_down(n, p, "disconnected", now);
        return;
    }
    if (n->closing) {
        if (event == ZMQ_EVENT_DISCONNECTED)
            p->goodbye_awaited = false; /* it cannot answer any more */
        return;
    }
    switch (event) {
    case ZMQ_EVENT_HANDSHAKE_SUCCEEDED:
        p->connected = true;
        p->failure_logged = false;
        if (p->stats.state == NET_PEER_JOINING && !p->have_hello) {
            send_hello(n, p, WIRE_HELLO);
            p->next_hello_ns = now + (int64_t)n->heartbeat_ms * 1000000;
        } else if (p->stats.state == NET_PEER_JOINING) {
            p->next_hello_ns = now + (int64_t)n->heartbeat_ms * 1000000;
        }
        break;
    case ZMQ_EVENT_DISCONNECTED:
        p->connected = false;
        if (p->stats.state == NET_PEER_UP)
            session_down(n, p, "disconnected", now);
        break;
    case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
    case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL:
    case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
        net_stat_add(n, &p->stats.handshake_failures, 1);
        if (!p->failure_logged) {
            p->failure_logged = true;
            if (event == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH)
                net_log(n, "%s at %s refused this node's key (ZAP status %u); retrying",
                        p->stats.name, p->stats.endpoint, value);
            else
                net_log(n, "the handshake with %s at %s failed (%s); retrying", p->stats.name,
                        p->stats.endpoint,
                        event == ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL ? "protocol" : "no detail");
        }
        break;
    default:
        break;
    }
}

void session_join(net_node *n, const char *name, const char *endpoint, int64_t now) {
    (void)now;
    net_peer *p = net_peer_find(n, name);
    if (p == NULL) {
        if ((p = net_peer_add(n, name, endpoint)) == NULL) {
            net_log(n, "cannot join %s: %d peers known already, or no memory", name, NET_MAX_PEERS);
            return;
        }
    } else if (p->dealer != NULL) {
        return; /* joining or in session already */
    } else {
        set_endpoint(n, p, endpoint); /* it said goodbye once; try it again where told */
        set_state(n, p, NET_PEER_JOINING);
    }
    net_dealer_open(n, p);
}

int64_t session_timers(net_node *n, int64_t now) {
    int64_t next = INT64_MAX;
    if (n->closing)
        return next;
    const int64_t heartbeat = (int64_t)n->heartbeat_ms * 1000000;
    const int64_t down_after = (int64_t)n->down_after_ms * 1000000;
    for (size_t i = 0; i < n->peer_count; i++) {
        net_peer *p = n->peers[i];
        if (p->stats.state == NET_PEER_UP && now - p->last_heard_ns >= down_after)
            session_down(n, p, "heartbeat timeout", now);
        if (p->stats.state == NET_PEER_UP) {
            if (now >= p->next_heartbeat_ns) {
                /* The last heartbeat got no answer, nor anything else: one interval missed. */
                if (p->last_heartbeat_ns != 0 && p->last_heard_ns < p->last_heartbeat_ns) {
                    net_stat_add(n, &p->stats.missed, 1);
                    if (!p->miss_logged) {
                        p->miss_logged = true;
                        net_log(n,
                                "missed a heartbeat of %s: nothing heard for %lld ms (down "
                                "after %u ms)",
                                p->stats.name, (long long)((now - p->last_heard_ns) / 1000000),
                                n->down_after_ms);
                    }
                }
                heartbeat_now(n, p, now);
            }
            if (p->next_heartbeat_ns < next)
                next = p->next_heartbeat_ns;
            if (p->last_heard_ns + down_after < next)
                next = p->last_heard_ns + down_after;
        } else if (p->stats.state == NET_PEER_JOINING && p->connected) {
            /* No session yet on a live connection: HELLO again now and then, in case what
             * answered the last one was lost. */
            if (now >= p->next_hello_ns) {
                send_hello(n, p, WIRE_HELLO);
                p->next_hello_ns = now + heartbeat;
            }
            if (p->next_hello_ns < next)
                next = p->next_hello_ns;
        }
    }
    return next;
}

void session_begin_close(net_node *n, int64_t now) {
    n->closing = true;
    n->close_deadline_ns = now + (int64_t)NET_GOODBYE_WAIT_MS * 1000000;
    for (size_t i = 0; i < n->peer_count; i++) {
        net_peer *p = n->peers[i];
        bool was_up = p->stats.state == NET_PEER_UP;
        net_data_unpublish(n, p);
        if (p->stats.state != NET_PEER_DOWN)
            set_state(n, p, NET_PEER_DOWN);
        if (was_up)
            emit(n, NET_NODE_DOWN, p, "shutdown");
        net_data_reset(n, p, NET_UNDELIVERED_SHUTDOWN);
        if (p->dealer == NULL)
            continue;
        send_goodbye(n, p, "shutdown");
        /* An acceptor that WELCOMEd it may already count it UP: wait for it too. */
        p->goodbye_awaited = (was_up || p->have_hello) && p->connected;
    }
}
