/*
 * net_send.c - the sending half of a node's net thread: what net_peer_send queued for a peer is
 * taken here, packed into DATA batches and FRAGMENT pieces and written to the peer's data DEALER,
 * a bounded turn at a time so that no peer, and no big message, holds the thread for long; what
 * cannot be written any more goes back to the owner as undelivered (net.h has the design).
 */
#include "nodes/net_internal.h"

#include <assert.h>
#include <errno.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* The data path: what waits to be written                                                        */
/* ---------------------------------------------------------------------------------------------- */

static void list_append(net_list *list, net_outgoing *m) {
    m->link.next = NULL;
    if (list->tail != NULL)
        list->tail->next = &m->link;
    else
        list->head = &m->link;
    list->tail = &m->link;
}

static void list_prepend(net_list *list, net_outgoing *m) {
    m->link.next = list->head;
    list->head = &m->link;
    if (list->tail == NULL)
        list->tail = &m->link;
}

static net_outgoing *list_pop(net_list *list) {
    mpsc_node *first = list->head;
    if (first == NULL)
        return NULL;
    list->head = first->next;
    if (list->head == NULL)
        list->tail = NULL;
    return (net_outgoing *)first; /* the link is the block's first member */
}

/* `front` then `back` into `back`; `front` emptied. */
static void list_put_before(net_list *front, net_list *back) {
    if (front->head == NULL)
        return;
    front->tail->next = back->head;
    if (back->tail == NULL)
        back->tail = front->tail;
    back->head = front->head;
    front->head = front->tail = NULL;
}

/* The next message to look at: the replayed ones, then the queue. */
static net_outgoing *next_outgoing(net_peer *p) {
    if (p->replay.head != NULL)
        return list_pop(&p->replay);
    return (net_outgoing *)mpsc_pop_end(&p->producer, &p->consumer);
}

static size_t from_hash(uint64_t key, size_t mask) {
    return (size_t)((key * 0x9e3779b97f4a7c15ull) >> 17) & mask;
}

static bool from_blocked(const net_from_set *set, uint64_t from) {
    if (set->all)
        return true;
    if (set->count == 0)
        return false;
    uint64_t key = from + 1; /* from is 48 bits: never 0 once + 1 */
    size_t mask = set->capacity - 1;
    for (size_t i = from_hash(key, mask);; i = (i + 1) & mask) {
        if (set->slots[i] == key)
            return true;
        if (set->slots[i] == 0)
            return false;
    }
}

static void from_insert(uint64_t *slots, size_t capacity, uint64_t key) {
    size_t mask = capacity - 1;
    size_t i = from_hash(key, mask);
    while (slots[i] != 0)
        i = (i + 1) & mask;
    slots[i] = key;
}

static void from_block(net_node *n, net_from_set *set, uint64_t from) {
    if (from_blocked(set, from))
        return;
    if ((set->count + 1) * 2 > set->capacity) {
        size_t capacity = set->capacity ? set->capacity * 2 : 16;
        uint64_t *slots = memory_calloc(&n->allocator, capacity * sizeof *slots);
        if (slots == NULL) {
            set->all = true;
            return;
        }
        for (size_t i = 0; i < set->capacity; i++)
            if (set->slots[i] != 0)
                from_insert(slots, capacity, set->slots[i]);
        memory_free(&n->allocator, set->slots, set->capacity * sizeof *slots);
        set->slots = slots;
        set->capacity = capacity;
    }
    from_insert(set->slots, set->capacity, from + 1);
    set->count++;
}

static void from_clear(net_from_set *set) {
    if (set->count != 0)
        memset(set->slots, 0, set->capacity * sizeof *set->slots);
    set->count = 0;
    set->all = false;
}

/* The queue counters lose `messages` messages of `bytes` payload bytes. */
static void queue_release(net_peer *p, uint64_t messages, uint64_t bytes) {
    if (messages == 0)
        return;
    /* Any order: each counter on its own (a send reserves bytes before it queues). */
    pr_faa_64(&p->queued_bytes, (uint64_t)0 - (bytes + messages * NET_QUEUED_OVERHEAD));
    pr_faa_64(&p->queued_messages, (uint64_t)0 - messages);
}

/* What give-backs cost, counted once per round. */
typedef struct give_back_count {
    uint64_t messages, bytes;
} give_back_count;

static void give_back(net_node *n, net_peer *p, net_outgoing *m, net_undelivered why,
                      give_back_count *count) {
    count->messages++;
    count->bytes += m->size;
    net_give_back(n, p, m, why);
}

static void give_back_done(net_node *n, net_peer *p, give_back_count *count) {
    if (count->messages == 0)
        return;
    queue_release(p, count->messages, count->bytes);
    net_stat_add(n, &p->stats.undelivered, count->messages);
    count->messages = count->bytes = 0;
}

static void give_back_list(net_node *n, net_peer *p, net_list *list, net_undelivered why,
                           give_back_count *count) {
    net_outgoing *m;
    while ((m = list_pop(list)) != NULL)
        give_back(n, p, m, why, count);
}

void net_data_up(net_node *n, net_peer *p) {
    (void)n;
    p->send_session++;
    p->send_seq = 1;
    /* The fields, then the word that names the session (release): see net_link_read. */
    pr_store_64(&p->link_incarnation, p->stats.incarnation);
    pr_store_64(&p->link_max_message, p->max_message);
    pr_store_64(&p->link, p->send_session << 1 | 1);
}

void net_data_unpublish(net_node *n, net_peer *p) {
    (void)n;
    pr_store_64(&p->link, p->send_session << 1);
}

void net_data_reset(net_node *n, net_peer *p, net_undelivered why) {
    give_back_count count = {0, 0};
    if (p->has_waiting) {
        zmq_msg_close(&p->waiting);
        p->has_waiting = false;
    }
    /* In the order they were queued, as far as it is known. */
    give_back_list(n, p, &p->written, why, &count);
    if (p->fragment != NULL) {
        give_back(n, p, p->fragment, why, &count);
        p->fragment = NULL;
    }
    give_back_list(n, p, &p->held, why, &count);
    give_back_list(n, p, &p->replay, why, &count);
    net_outgoing *m;
    /* A send half done (between its exchange and its link) is found on a later turn: its session
     * is over by then, so it comes back too. */
    while ((m = (net_outgoing *)mpsc_pop_end(&p->producer, &p->consumer)) != NULL)
        give_back(n, p, m, why, &count);
    give_back_done(n, p, &count);
    from_clear(&p->blocked);
    p->fragment_seq = 0;
    p->fragment_offset = 0;
    p->data_blocked = false;
}

/* ---------------------------------------------------------------------------------------------- */
/* The data path: packing and writing                                                             */
/* ---------------------------------------------------------------------------------------------- */

static wire_msg outgoing_header(const net_outgoing *m) {
    return (wire_msg){.to = m->to,
                      .from = m->from,
                      .type = m->type,
                      .flags = m->flags,
                      .request_id = m->request_id,
                      .data = m->payload,
                      .size = m->size};
}

/* Encodes the messages of `written` into one DATA packet (`waiting`), which takes the next seqs;
 * returns its bytes, or 0 when there is no memory for it now (they stay, and go first). */
static size_t encode_batch(net_peer *p) {
    if (zmq_msg_init_size(&p->waiting, p->written_size) != 0)
        return 0;
    wire_batch packet;
    int rc = wire_batch_begin(&packet, zmq_msg_data(&p->waiting), p->written_size, p->out_session,
                              p->send_seq);
    for (mpsc_node *at = p->written.head; at != NULL && rc == 0; at = at->next) {
        wire_msg msg = outgoing_header((net_outgoing *)at);
        rc = wire_batch_add(&packet, &msg);
    }
    /* net_peer_send checked every field the writer checks */
    rc = rc == 0 ? wire_batch_end(&packet) : rc;
    assert(rc == (int)p->written_size);
    (void)rc;
    p->send_seq += p->written_count;
    p->has_waiting = true;
    p->waiting_piece = false;
    return p->written_size;
}

/* Packs the next messages into `written` and encodes them (encode_batch); returns the packet's
 * bytes, 0 when nothing could go (or no memory). On the way: messages of an ended session go back,
 * a large one becomes the fragment (or is held behind it), those of a blocked from are held. */
static size_t pack_batch(net_node *n, net_peer *p, size_t *walked) {
    net_list batch = {NULL, NULL};
    size_t size = WIRE_HEADER_SIZE + WIRE_DATA_FIXED;
    uint32_t count = 0;
    give_back_count gone = {0, 0};
    while (*walked < NET_TURN_WALK) {
        net_outgoing *m = next_outgoing(p);
        if (m == NULL)
            break;
        ++*walked;
        if (m->session != p->send_session) { /* it raced the DOWN of its session */
            give_back(n, p, m, NET_UNDELIVERED_NODE_DOWN, &gone);
            continue;
        }
        if (from_blocked(&p->blocked, m->from)) {
            list_append(&p->held, m);
            continue;
        }
        if (m->size > NET_FRAGMENT_THRESHOLD) {
            from_block(n, &p->blocked, m->from);
            if (p->fragment == NULL) {
                p->fragment = m;
                p->fragment_seq = 0;
                p->fragment_offset = 0;
            } else {
                list_append(&p->held, m);
            }
            continue;
        }
        size_t need = WIRE_MSG_FIXED + (m->flags & WIRE_MSG_HAS_REQUEST_ID ? 8 : 0) + m->size;
        if (count > 0 && (size + need > NET_BATCH_BYTES || count == WIRE_DATA_MAX_COUNT)) {
            list_prepend(&p->replay, m); /* the first of the next batch */
            break;
        }
        list_append(&batch, m);
        size += need;
        count++;
        if (size >= NET_BATCH_BYTES)
            break;
    }
    give_back_done(n, p, &gone);
    if (count == 0)
        return 0;
    p->written = batch;
    p->written_count = count;
    p->written_size = size;
    return encode_batch(p);
}

/* Packs the fragment's next piece into `waiting`; returns its bytes (0: no memory now). The
 * message takes its seq with its first piece. */
static size_t pack_piece(net_node *n, net_peer *p) {
    (void)n;
    net_outgoing *m = p->fragment;
    size_t piece = m->size - p->fragment_offset;
    if (piece > NET_PIECE_BYTES)
        piece = NET_PIECE_BYTES;
    size_t size = WIRE_HEADER_SIZE + WIRE_FRAGMENT_FIXED + piece;
    if (zmq_msg_init_size(&p->waiting, size) != 0)
        return 0;
    if (p->fragment_seq == 0)
        p->fragment_seq = p->send_seq++;
    wire_fragment fragment = {.session = p->out_session,
                              .seq = p->fragment_seq,
                              .total_size = m->size,
                              .offset = p->fragment_offset,
                              .header = outgoing_header(m),
                              .piece = m->payload + p->fragment_offset,
                              .piece_size = (uint32_t)piece};
    int rc = wire_fragment_write(zmq_msg_data(&p->waiting), size, &fragment);
    assert(rc == (int)size);
    (void)rc;
    p->has_waiting = true;
    p->waiting_piece = true;
    p->waiting_end = p->fragment_offset + piece;
    return size;
}

/* Writes `waiting` if the data DEALER takes it now; false when it waits for POLLOUT. */
static bool write_waiting(net_node *n, net_peer *p) {
    size_t size = zmq_msg_size(&p->waiting);
    while (zmq_msg_send(&p->waiting, p->data, ZMQ_DONTWAIT) < 0) {
        if (errno == EINTR)
            continue;
        /* EAGAIN: the high-water mark (a slow or frozen peer). Anything else is not expected of
         * an open DEALER; waiting is right for it too (the session's end clears it). */
        p->data_blocked = true;
        return false;
    }
    p->has_waiting = false; /* zmq_msg_send took it */
    uint64_t messages = 0, fragments = 0, bytes = 0;
    if (p->waiting_piece) {
        fragments = 1;
        p->fragment_offset = p->waiting_end;
        net_outgoing *m = p->fragment;
        if (p->fragment_offset == m->size) { /* written whole: the held ones get another look */
            messages = 1;
            bytes = m->size;
            p->fragment = NULL;
            p->fragment_seq = 0;
            p->fragment_offset = 0;
            net_outgoing_free(n, m);
            from_clear(&p->blocked);
            list_put_before(&p->held, &p->replay);
        }
    } else {
        net_outgoing *m;
        while ((m = list_pop(&p->written)) != NULL) {
            messages++;
            bytes += m->size;
            net_outgoing_free(n, m);
        }
    }
    queue_release(p, messages, bytes);
    pthread_mutex_lock(&n->lock);
    p->stats.bytes_out += size;
    p->stats.messages_out += messages;
    p->stats.fragments_out += fragments;
    pthread_mutex_unlock(&n->lock);
    return true;
}

/* Whether p's data path has something to do now. */
bool net_data_ready(net_peer *p) {
    if (p->data_blocked)
        return false;
    if (p->has_waiting || p->written.head != NULL || p->fragment != NULL || p->replay.head != NULL)
        return true;
    return !mpsc_empty_end(&p->producer, &p->consumer);
}

/* One turn of p's data path: at most NET_TURN_BYTES of packets, one piece among them, until
 * `stop` at the latest (one packet at least). */
void net_data_turn(net_node *n, net_peer *p, int64_t stop) {
    if (p->stats.state != NET_PEER_UP || p->data == NULL) {
        /* Sends that raced a DOWN (the rest went back at the DOWN). */
        if (!mpsc_empty_end(&p->producer, &p->consumer))
            net_data_reset(n, p, NET_UNDELIVERED_NODE_DOWN);
        return;
    }
    if (p->data_blocked) /* until POLLOUT */
        return;
    size_t spent = 0, walked = 0, batches = 0;
    bool piece_done = false;
    for (;;) {
        if (p->has_waiting && !write_waiting(n, p))
            return;
        if (spent >= NET_TURN_BYTES || (spent > 0 && net_now_ns() >= stop))
            return;
        size_t size = 0;
        if (p->written.head != NULL) { /* packed, not yet encoded (no memory then): first */
            if ((size = encode_batch(p)) == 0)
                return;
            spent += size;
            continue;
        }
        /* A piece after the first batch: neither starves the other. */
        if (p->fragment != NULL && !piece_done && batches > 0) {
            size = pack_piece(n, p);
            piece_done = true;
        } else if ((size = pack_batch(n, p, &walked)) > 0) {
            batches++;
        } else if (p->fragment != NULL && !piece_done) {
            size = pack_piece(n, p);
            piece_done = true;
        }
        if (size == 0 && !p->has_waiting)
            return;
        spent += size;
    }
}
