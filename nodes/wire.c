/*
 * wire.c - node packets (wire.h): the strict parser a frame from a peer meets first, and the
 * writers that build what the net thread sends. The parser believes no count or size beyond the
 * bytes left and says where it stopped; the writers check the same rules, so what they write
 * parses.
 */
#include "nodes/wire.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

const char *wire_kind_name(int kind) {
    static const char *const names[] = {"unknown",   "HELLO",         "WELCOME",
                                        "HEARTBEAT", "HEARTBEAT_ACK", "GOODBYE",
                                        "DATA",      "FRAGMENT",      "MEMBERS"};
    return kind >= WIRE_HELLO && kind <= WIRE_MEMBERS ? names[kind] : names[0];
}

/* Node names: 1..63 bytes of [A-Za-z0-9_.-], not starting with '.' or '-' (the same rule as
 * nodes/keys.c, where a name is also a file name: no hidden files, nothing that reads as an
 * option). */
static int name_char_ok(unsigned char c) {
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '.' || c == '-';
}

/* Endpoints: printable ASCII without space (what a "tcp://host:port" and a log line can hold). */
static int endpoint_char_ok(unsigned char c) { return c >= 0x21 && c <= 0x7e; }

/* ---------------------------------------------------------------------------------------------- */
/* Parsing                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

typedef struct reader {
    const unsigned char *data;
    size_t size;
    size_t offset; /* the next byte to read */
    char *err;
    size_t err_size;
    int status;
    long message; /* the DATA message being read (for the words of an error), or -1 */
} reader;

static int fail(reader *r, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static int fail(reader *r, int status, const char *fmt, ...) {
    if (r->status)
        return r->status;
    r->status = status;
    if (r->err && r->err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(r->err, r->err_size, fmt, ap);
        va_end(ap);
    }
    return status;
}

/* Checks that n bytes remain at the offset; `what` names what needs them. */
static int need(reader *r, size_t n, const char *what) {
    size_t left = r->size - r->offset;
    if (n <= left)
        return 0;
    if (r->message >= 0)
        return fail(r, SPOOL_EINVAL,
                    "truncated: message %ld %s at offset %zu needs %zu bytes, %zu left", r->message,
                    what, r->offset, n, left);
    return fail(r, SPOOL_EINVAL, "truncated: %s at offset %zu needs %zu bytes, %zu left", what,
                r->offset, n, left);
}

/* Reads an n-byte little-endian integer. */
static int read_le(reader *r, int n, const char *what, uint64_t *value) {
    if (need(r, (size_t)n, what))
        return r->status;
    const unsigned char *p = r->data + r->offset;
    uint64_t v = 0;
    for (int i = n - 1; i >= 0; i--)
        v = v << 8 | p[i];
    *value = v;
    r->offset += (size_t)n;
    return 0;
}

static int read_u64(reader *r, const char *what, uint64_t *value) {
    return read_le(r, 8, what, value);
}

static int read_u32(reader *r, const char *what, uint32_t *value) {
    uint64_t v = 0;
    int rc = read_le(r, 4, what, &v);
    *value = (uint32_t)v;
    return rc;
}

static int read_u8(reader *r, const char *what, unsigned *value) {
    uint64_t v = 0;
    int rc = read_le(r, 1, what, &v);
    *value = (unsigned)v;
    return rc;
}

/* An actor id of 48 bits (or 0), read as `what`. */
static int read_id(reader *r, const char *what, uint64_t *id) {
    size_t at = r->offset;
    if (read_u64(r, what, id))
        return r->status;
    if (*id & ~(uint64_t)WIRE_ID_MASK) {
        if (r->message >= 0)
            return fail(r, SPOOL_EINVAL,
                        "message %ld: '%s' 0x%016llx at offset %zu uses the high 16 bits",
                        r->message, what, (unsigned long long)*id, at);
        return fail(r, SPOOL_EINVAL, "'%s' 0x%016llx at offset %zu uses the high 16 bits", what,
                    (unsigned long long)*id, at);
    }
    return 0;
}

/* to, from, type and flags: the front of a DATA message and of a FRAGMENT's header. */
static int read_message_front(reader *r, wire_msg *m) {
    if (read_id(r, "to", &m->to) || read_id(r, "from", &m->from) || read_u32(r, "type", &m->type))
        return r->status;
    size_t at = r->offset;
    if (read_u32(r, "flags", &m->flags))
        return r->status;
    if (m->flags & ~WIRE_MSG_KNOWN_FLAGS) {
        if (r->message >= 0)
            return fail(r, SPOOL_EINVAL, "message %ld: reserved flags 0x%08x at offset %zu",
                        r->message, m->flags, at);
        return fail(r, SPOOL_EINVAL, "reserved message flags 0x%08x at offset %zu", m->flags, at);
    }
    return 0;
}

/* One DATA message at r->offset; advances past it. */
static int read_data_message(reader *r, size_t max_message, wire_msg *m) {
    if (read_message_front(r, m))
        return r->status;
    m->request_id = 0;
    if ((m->flags & WIRE_MSG_HAS_REQUEST_ID) && read_u64(r, "request_id", &m->request_id))
        return r->status;
    size_t at = r->offset;
    if (read_u32(r, "size", &m->size))
        return r->status;
    if (m->size > max_message)
        return fail(r, SPOOL_EMSGSIZE,
                    "message %ld: size %u at offset %zu exceeds the limit of %zu", r->message,
                    m->size, at, max_message);
    if (need(r, m->size, "payload"))
        return r->status;
    m->data = r->data + r->offset;
    r->offset += m->size;
    return 0;
}

/* A node name (u8 length, bytes) into out (64 bytes, NUL-terminated). */
static int read_name(reader *r, char *out) {
    unsigned name_len = 0;
    size_t at = r->offset;
    if (read_u8(r, "name_len", &name_len))
        return r->status;
    if (name_len < 1 || name_len > WIRE_NAME_MAX)
        return fail(r, SPOOL_EINVAL, "name of %u bytes at offset %zu (a name has 1..%d)", name_len,
                    at, WIRE_NAME_MAX);
    if (need(r, name_len, "name"))
        return r->status;
    for (unsigned i = 0; i < name_len; i++) {
        unsigned char c = r->data[r->offset + i];
        if (!name_char_ok(c))
            return fail(r, SPOOL_EINVAL,
                        "name byte 0x%02x at offset %zu is not one of [A-Za-z0-9_.-]", c,
                        r->offset + i);
    }
    if (r->data[r->offset] == '.' || r->data[r->offset] == '-') /* as nodes/keys.c: a key file */
        return fail(r, SPOOL_EINVAL, "name at offset %zu starts with '%c'", r->offset,
                    r->data[r->offset]);
    memcpy(out, r->data + r->offset, name_len);
    out[name_len] = '\0';
    r->offset += name_len;
    return 0;
}

/* An endpoint (u8 length, bytes) into out (256 bytes, NUL-terminated). */
static int read_endpoint(reader *r, char *out) {
    unsigned endpoint_len = 0;
    size_t at = r->offset;
    if (read_u8(r, "endpoint_len", &endpoint_len))
        return r->status;
    if (endpoint_len < 1)
        return fail(r, SPOOL_EINVAL, "endpoint of 0 bytes at offset %zu (an endpoint has 1..%d)",
                    at, WIRE_ENDPOINT_MAX);
    if (need(r, endpoint_len, "endpoint"))
        return r->status;
    for (unsigned i = 0; i < endpoint_len; i++) {
        unsigned char c = r->data[r->offset + i];
        if (!endpoint_char_ok(c))
            return fail(r, SPOOL_EINVAL,
                        "endpoint byte 0x%02x at offset %zu is not printable ASCII (0x21..0x7e)", c,
                        r->offset + i);
    }
    memcpy(out, r->data + r->offset, endpoint_len);
    out[endpoint_len] = '\0';
    r->offset += endpoint_len;
    return 0;
}

static int parse_hello(reader *r, wire_kind kind, wire_hello *h) {
    if (read_u64(r, "cluster", &h->cluster) || read_u64(r, "incarnation", &h->incarnation) ||
        read_u64(r, "session", &h->session) || read_u32(r, "heartbeat_ms", &h->heartbeat_ms) ||
        read_u32(r, "max_message", &h->max_message) || read_name(r, h->name) ||
        read_endpoint(r, h->endpoint))
        return r->status;
    if (kind == WIRE_WELCOME && read_u64(r, "echo_session", &h->echo_session))
        return r->status;
    return 0;
}

/* The fixed fields of MEMBERS, then a walk over every member (wire_members_next reads them
 * again). */
static int parse_members(reader *r, wire_members *m, size_t *first_member) {
    uint64_t count = 0;
    if (read_u64(r, "session", &m->session))
        return r->status;
    size_t at = r->offset;
    if (read_le(r, 2, "count", &count))
        return r->status;
    m->count = (uint16_t)count;
    if (count == 0)
        return fail(r, SPOOL_EINVAL, "MEMBERS count 0 at offset %zu", at);
    if (count > WIRE_MEMBERS_MAX_COUNT)
        return fail(r, SPOOL_EMSGSIZE, "MEMBERS count %llu at offset %zu exceeds %d",
                    (unsigned long long)count, at, WIRE_MEMBERS_MAX_COUNT);
    /* Never believe a count larger than the bytes left: every member takes at least 4. */
    size_t left = r->size - r->offset;
    if (count > left / WIRE_MEMBER_MIN)
        return fail(
            r, SPOOL_EINVAL,
            "truncated: MEMBERS count %llu at offset %zu, only %zu bytes left (%d a member)",
            (unsigned long long)count, at, left, WIRE_MEMBER_MIN);
    *first_member = r->offset;
    for (uint64_t i = 0; i < count; i++) {
        wire_member member;
        if (read_name(r, member.name) || read_endpoint(r, member.endpoint))
            return r->status;
    }
    return 0;
}

static int parse_heartbeat(reader *r, wire_heartbeat *h) {
    if (read_u64(r, "session", &h->session) || read_u64(r, "sent_ns", &h->sent_ns) ||
        read_u64(r, "last_seq_received", &h->last_seq_received))
        return r->status;
    return 0;
}

static int parse_goodbye(reader *r, wire_goodbye *g) {
    unsigned len = 0;
    if (read_u64(r, "session", &g->session) || read_u8(r, "reason_len", &len) ||
        need(r, len, "reason"))
        return r->status;
    g->reason = (const char *)r->data + r->offset;
    g->reason_len = len;
    r->offset += len;
    return 0;
}

/* The fixed fields of DATA, then a walk over every message (wire_data_next reads them again). */
static int parse_data(reader *r, size_t max_message, wire_data *d, size_t *first_message) {
    if (read_u64(r, "session", &d->session))
        return r->status;
    size_t seq_at = r->offset;
    if (read_u64(r, "first_seq", &d->first_seq))
        return r->status;
    if (d->first_seq == 0)
        return fail(r, SPOOL_EINVAL, "first_seq 0 at offset %zu (sequence numbers start at 1)",
                    seq_at);
    size_t at = r->offset;
    if (read_u32(r, "count", &d->count))
        return r->status;
    if (d->count == 0)
        return fail(r, SPOOL_EINVAL, "DATA count 0 at offset %zu", at);
    if (d->count > WIRE_DATA_MAX_COUNT)
        return fail(r, SPOOL_EMSGSIZE, "DATA count %u at offset %zu exceeds %d", d->count, at,
                    WIRE_DATA_MAX_COUNT);
    /* Never believe a count larger than the bytes left: every message takes at least 28. */
    size_t left = r->size - r->offset;
    if (d->count > left / WIRE_MSG_FIXED)
        return fail(r, SPOOL_EINVAL,
                    "truncated: DATA count %u at offset %zu, only %zu bytes left (%d a message)",
                    d->count, at, left, WIRE_MSG_FIXED);
    if (d->first_seq - 1 > UINT64_MAX - d->count)
        return fail(r, SPOOL_EINVAL,
                    "DATA first_seq %llu at offset %zu + count %u wraps past 2^64 - 1",
                    (unsigned long long)d->first_seq, seq_at, d->count);
    *first_message = r->offset;
    for (uint32_t i = 0; i < d->count; i++) {
        wire_msg m;
        r->message = (long)i;
        if (read_data_message(r, max_message, &m))
            return r->status;
    }
    r->message = -1;
    return 0;
}

static int parse_fragment(reader *r, size_t max_message, wire_fragment *f) {
    wire_msg *m = &f->header;
    if (read_u64(r, "session", &f->session))
        return r->status;
    size_t at = r->offset;
    if (read_u64(r, "seq", &f->seq))
        return r->status;
    if (f->seq == 0)
        return fail(r, SPOOL_EINVAL, "seq 0 at offset %zu (sequence numbers start at 1)", at);
    at = r->offset;
    if (read_u64(r, "total_size", &f->total_size))
        return r->status;
    if (f->total_size > max_message)
        return fail(r, SPOOL_EMSGSIZE, "total_size %llu at offset %zu exceeds the limit of %zu",
                    (unsigned long long)f->total_size, at, max_message);
    size_t offset_at = r->offset;
    if (read_u64(r, "offset", &f->offset) || read_message_front(r, m))
        return r->status;
    at = r->offset;
    if (read_u64(r, "request_id", &m->request_id))
        return r->status;
    if (!(m->flags & WIRE_MSG_HAS_REQUEST_ID) && m->request_id != 0)
        return fail(r, SPOOL_EINVAL,
                    "request_id %llu at offset %zu without a request, reply or error flag",
                    (unsigned long long)m->request_id, at);
    at = r->offset;
    if (read_u32(r, "piece_size", &f->piece_size))
        return r->status;
    if (f->piece_size == 0)
        return fail(r, SPOOL_EINVAL, "piece_size 0 at offset %zu", at);
    if (f->piece_size > WIRE_PIECE_MAX)
        return fail(r, SPOOL_EMSGSIZE, "piece_size %u at offset %zu exceeds %u", f->piece_size, at,
                    WIRE_PIECE_MAX);
    if (f->offset > f->total_size || f->piece_size > f->total_size - f->offset)
        return fail(r, SPOOL_EINVAL,
                    "piece of %u bytes at offset %llu (field at offset %zu) ends past "
                    "total_size %llu",
                    f->piece_size, (unsigned long long)f->offset, offset_at,
                    (unsigned long long)f->total_size);
    if (need(r, f->piece_size, "piece"))
        return r->status;
    f->piece = r->data + r->offset;
    r->offset += f->piece_size;
    return 0;
}

static int parse_packet(reader *r, const wire_limits *limits, wire_packet *out) {
    size_t max_packet = limits && limits->max_packet ? limits->max_packet : WIRE_DEFAULT_MAX_PACKET;
    size_t max_message =
        limits && limits->max_message ? limits->max_message : WIRE_DEFAULT_MAX_MESSAGE;
    if (need(r, WIRE_HEADER_SIZE, "the header"))
        return r->status;
    const unsigned char *h = r->data;
    if (memcmp(h, WIRE_MAGIC, 4) != 0)
        return fail(r, SPOOL_EINVAL, "bad magic %02x %02x %02x %02x at offset 0 (not \"SPN1\")",
                    h[0], h[1], h[2], h[3]);
    if (h[4] != WIRE_VERSION)
        return fail(r, SPOOL_EINVAL, "unsupported protocol version %u at offset 4", h[4]);
    if (h[5] < WIRE_HELLO || h[5] > WIRE_MEMBERS)
        return fail(r, SPOOL_EINVAL, "unknown packet kind %u at offset 5", h[5]);
    unsigned flags = (unsigned)h[6] | (unsigned)h[7] << 8;
    if (flags != 0)
        return fail(r, SPOOL_EINVAL, "reserved header flags 0x%04x at offset 6", flags);
    if (r->size - WIRE_HEADER_SIZE > max_packet)
        return fail(r, SPOOL_EMSGSIZE, "packet of %zu bytes exceeds the limit of %zu (8 + %zu)",
                    r->size, max_packet + WIRE_HEADER_SIZE, max_packet);
    r->offset = WIRE_HEADER_SIZE;
    wire_kind kind = (wire_kind)h[5];
    int rc = 0;
    switch (kind) {
    case WIRE_HELLO:
    case WIRE_WELCOME:
        rc = parse_hello(r, kind, &out->hello);
        break;
    case WIRE_HEARTBEAT:
    case WIRE_HEARTBEAT_ACK:
        rc = parse_heartbeat(r, &out->heartbeat);
        break;
    case WIRE_GOODBYE:
        rc = parse_goodbye(r, &out->goodbye);
        break;
    case WIRE_DATA:
        rc = parse_data(r, max_message, &out->data, &out->cursor);
        break;
    case WIRE_FRAGMENT:
        rc = parse_fragment(r, max_message, &out->fragment);
        break;
    case WIRE_MEMBERS:
        rc = parse_members(r, &out->members, &out->cursor);
        break;
    }
    if (rc)
        return rc;
    if (r->offset != r->size)
        return fail(r, SPOOL_EINVAL, "trailing bytes: the %s packet ends at offset %zu of %zu",
                    wire_kind_name(kind), r->offset, r->size);
    out->kind = kind;
    out->size = r->size;
    out->bytes = r->data;
    out->max_message = max_message;
    return 0;
}

int wire_parse(const void *p, size_t n, const wire_limits *limits, wire_packet *out, char *err,
               size_t err_size) {
    if (err && err_size)
        err[0] = '\0';
    if (!out) {
        if (err && err_size)
            snprintf(err, err_size, "no packet to fill");
        return SPOOL_EINVAL;
    }
    memset(out, 0, sizeof *out);
    reader r = {p, n, 0, err, err_size, 0, -1};
    if (!p && n) {
        fail(&r, SPOOL_EINVAL, "no input");
        return r.status;
    }
    if (parse_packet(&r, limits, out)) {
        memset(out, 0, sizeof *out);
        return r.status;
    }
    return 0;
}

int wire_data_next(wire_packet *packet, wire_msg *out, char *err, size_t err_size) {
    if (err && err_size)
        err[0] = '\0';
    if (!packet || !out || packet->kind != WIRE_DATA || !packet->bytes) {
        if (err && err_size)
            snprintf(err, err_size, "not a parsed DATA packet");
        return SPOOL_EINVAL;
    }
    if (packet->delivered >= packet->data.count)
        return 0;
    reader r = {packet->bytes,          packet->size, packet->cursor, err, err_size, 0,
                (long)packet->delivered};
    if (packet->cursor > packet->size) {
        fail(&r, SPOOL_EINVAL, "cursor %zu past the packet's %zu bytes", packet->cursor,
             packet->size);
        return r.status;
    }
    if (read_data_message(&r, packet->max_message, out))
        return r.status;
    packet->cursor = r.offset;
    packet->delivered++;
    return 1;
}

int wire_members_next(wire_packet *packet, wire_member *out, char *err, size_t err_size) {
    if (err && err_size)
        err[0] = '\0';
    if (!packet || !out || packet->kind != WIRE_MEMBERS || !packet->bytes) {
        if (err && err_size)
            snprintf(err, err_size, "not a parsed MEMBERS packet");
        return SPOOL_EINVAL;
    }
    if (packet->delivered >= packet->members.count)
        return 0;
    reader r = {packet->bytes, packet->size, packet->cursor, err, err_size, 0, -1};
    if (packet->cursor > packet->size) {
        fail(&r, SPOOL_EINVAL, "cursor %zu past the packet's %zu bytes", packet->cursor,
             packet->size);
        return r.status;
    }
    if (read_name(&r, out->name) || read_endpoint(&r, out->endpoint))
        return r.status;
    packet->cursor = r.offset;
    packet->delivered++;
    return 1;
}

/* ---------------------------------------------------------------------------------------------- */
/* Writing                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static unsigned char *put_le(unsigned char *p, uint64_t v, int n) {
    for (int i = 0; i < n; i++, v >>= 8)
        p[i] = (unsigned char)(v & 0xff);
    return p + n;
}

static unsigned char *put_header(unsigned char *p, wire_kind kind) {
    memcpy(p, WIRE_MAGIC, 4);
    p[4] = WIRE_VERSION;
    p[5] = (unsigned char)kind;
    p[6] = 0;
    p[7] = 0;
    return p + WIRE_HEADER_SIZE;
}

/* The bytes of a valid name (1..63), or 0. */
static size_t name_length(const char *name) {
    const char *end = memchr(name, '\0', WIRE_NAME_MAX + 1);
    if (!end || end == name || name[0] == '.' || name[0] == '-')
        return 0;
    for (const char *c = name; c < end; c++)
        if (!name_char_ok((unsigned char)*c))
            return 0;
    return (size_t)(end - name);
}

/* What the parser asks of to, from, flags and request_id. */
static int check_message_front(const wire_msg *m) {
    if ((m->to | m->from) & ~(uint64_t)WIRE_ID_MASK)
        return SPOOL_EINVAL;
    if (m->flags & ~WIRE_MSG_KNOWN_FLAGS)
        return SPOOL_EINVAL;
    if (!(m->flags & WIRE_MSG_HAS_REQUEST_ID) && m->request_id != 0)
        return SPOOL_EINVAL;
    return 0;
}

static int check_fragment(const wire_fragment *f) {
    if (!f || f->seq == 0 || !f->piece || f->piece_size == 0)
        return SPOOL_EINVAL;
    if (f->piece_size > WIRE_PIECE_MAX)
        return SPOOL_EMSGSIZE;
    if (f->offset > f->total_size || f->piece_size > f->total_size - f->offset)
        return SPOOL_EINVAL;
    return check_message_front(&f->header);
}

/* The bytes of a valid endpoint (1..255), or 0. */
static size_t endpoint_length(const char *endpoint) {
    const char *end = memchr(endpoint, '\0', WIRE_ENDPOINT_MAX + 1);
    if (!end || end == endpoint)
        return 0;
    for (const char *c = endpoint; c < end; c++)
        if (!endpoint_char_ok((unsigned char)*c))
            return 0;
    return (size_t)(end - endpoint);
}

size_t wire_hello_size(const wire_hello *hello, wire_kind kind) {
    if (!hello || (kind != WIRE_HELLO && kind != WIRE_WELCOME))
        return 0;
    size_t name_len = name_length(hello->name);
    size_t endpoint_len = endpoint_length(hello->endpoint);
    if (!name_len || !endpoint_len)
        return 0;
    return WIRE_HEADER_SIZE + (kind == WIRE_WELCOME ? WIRE_WELCOME_FIXED : WIRE_HELLO_FIXED) +
           name_len + endpoint_len;
}

int wire_hello_write(void *buf, size_t capacity, wire_kind kind, const wire_hello *hello) {
    size_t size = wire_hello_size(hello, kind);
    if (!size || !buf)
        return SPOOL_EINVAL;
    if (size > capacity)
        return SPOOL_EFULL;
    size_t name_len = name_length(hello->name);
    size_t endpoint_len = endpoint_length(hello->endpoint);
    unsigned char *p = put_header(buf, kind);
    p = put_le(p, hello->cluster, 8);
    p = put_le(p, hello->incarnation, 8);
    p = put_le(p, hello->session, 8);
    p = put_le(p, hello->heartbeat_ms, 4);
    p = put_le(p, hello->max_message, 4);
    *p++ = (unsigned char)name_len;
    memcpy(p, hello->name, name_len);
    p += name_len;
    *p++ = (unsigned char)endpoint_len;
    memcpy(p, hello->endpoint, endpoint_len);
    p += endpoint_len;
    if (kind == WIRE_WELCOME)
        p = put_le(p, hello->echo_session, 8);
    return (int)size;
}

size_t wire_heartbeat_size(void) { return WIRE_HEADER_SIZE + WIRE_HEARTBEAT_BODY; }

int wire_heartbeat_write(void *buf, size_t capacity, wire_kind kind,
                         const wire_heartbeat *heartbeat) {
    if (!buf || !heartbeat || (kind != WIRE_HEARTBEAT && kind != WIRE_HEARTBEAT_ACK))
        return SPOOL_EINVAL;
    if (capacity < wire_heartbeat_size())
        return SPOOL_EFULL;
    unsigned char *p = put_header(buf, kind);
    p = put_le(p, heartbeat->session, 8);
    p = put_le(p, heartbeat->sent_ns, 8);
    put_le(p, heartbeat->last_seq_received, 8);
    return (int)wire_heartbeat_size();
}

size_t wire_goodbye_size(const wire_goodbye *goodbye) {
    if (!goodbye || goodbye->reason_len > WIRE_REASON_MAX ||
        (!goodbye->reason && goodbye->reason_len))
        return 0;
    return WIRE_HEADER_SIZE + WIRE_GOODBYE_FIXED + goodbye->reason_len;
}

int wire_goodbye_write(void *buf, size_t capacity, const wire_goodbye *goodbye) {
    if (!buf || !goodbye || (!goodbye->reason && goodbye->reason_len))
        return SPOOL_EINVAL;
    if (goodbye->reason_len > WIRE_REASON_MAX)
        return SPOOL_EMSGSIZE;
    size_t size = wire_goodbye_size(goodbye);
    if (size > capacity)
        return SPOOL_EFULL;
    unsigned char *p = put_header(buf, WIRE_GOODBYE);
    p = put_le(p, goodbye->session, 8);
    *p++ = (unsigned char)goodbye->reason_len;
    if (goodbye->reason_len)
        memcpy(p, goodbye->reason, goodbye->reason_len);
    return (int)size;
}

size_t wire_fragment_size(const wire_fragment *fragment) {
    if (check_fragment(fragment))
        return 0;
    return WIRE_HEADER_SIZE + WIRE_FRAGMENT_FIXED + (size_t)fragment->piece_size;
}

int wire_fragment_write(void *buf, size_t capacity, const wire_fragment *fragment) {
    int rc = buf ? check_fragment(fragment) : SPOOL_EINVAL;
    if (rc)
        return rc;
    size_t size = wire_fragment_size(fragment);
    if (size > capacity)
        return SPOOL_EFULL;
    const wire_msg *m = &fragment->header;
    unsigned char *p = put_header(buf, WIRE_FRAGMENT);
    p = put_le(p, fragment->session, 8);
    p = put_le(p, fragment->seq, 8);
    p = put_le(p, fragment->total_size, 8);
    p = put_le(p, fragment->offset, 8);
    p = put_le(p, m->to, 8);
    p = put_le(p, m->from, 8);
    p = put_le(p, m->type, 4);
    p = put_le(p, m->flags, 4);
    p = put_le(p, m->request_id, 8);
    p = put_le(p, fragment->piece_size, 4);
    memcpy(p, fragment->piece, fragment->piece_size);
    return (int)size;
}

size_t wire_msg_size(const wire_msg *msg) {
    if (!msg || check_message_front(msg) || (!msg->data && msg->size))
        return 0;
    return WIRE_MSG_FIXED + (msg->flags & WIRE_MSG_HAS_REQUEST_ID ? 8 : 0) + (size_t)msg->size;
}

/* The offset of a DATA packet's count. */
#define WIRE_DATA_COUNT_AT (WIRE_HEADER_SIZE + 16)

int wire_batch_begin(wire_batch *batch, void *buf, size_t capacity, uint64_t session,
                     uint64_t first_seq) {
    if (!batch)
        return SPOOL_EINVAL;
    memset(batch, 0, sizeof *batch);
    if (!buf || first_seq == 0)
        return SPOOL_EINVAL;
    if (capacity < WIRE_HEADER_SIZE + WIRE_DATA_FIXED)
        return SPOOL_EFULL;
    unsigned char *p = put_header(buf, WIRE_DATA);
    p = put_le(p, session, 8);
    p = put_le(p, first_seq, 8);
    put_le(p, 0, 4); /* the count, written by wire_batch_end */
    batch->buf = buf;
    batch->capacity = capacity;
    batch->size = WIRE_HEADER_SIZE + WIRE_DATA_FIXED;
    batch->first_seq = first_seq;
    return 0;
}

int wire_batch_add(wire_batch *batch, const wire_msg *msg) {
    if (!batch || !batch->buf)
        return SPOOL_EINVAL;
    size_t need = wire_msg_size(msg);
    if (!need)
        return SPOOL_EINVAL;
    /* the new message's seq is first_seq + count: it must not wrap */
    if (batch->count > UINT64_MAX - batch->first_seq)
        return SPOOL_EINVAL;
    if (batch->count >= WIRE_DATA_MAX_COUNT || need > batch->capacity - batch->size ||
        need > (size_t)INT_MAX - batch->size)
        return SPOOL_EFULL;
    unsigned char *p = batch->buf + batch->size;
    p = put_le(p, msg->to, 8);
    p = put_le(p, msg->from, 8);
    p = put_le(p, msg->type, 4);
    p = put_le(p, msg->flags, 4);
    if (msg->flags & WIRE_MSG_HAS_REQUEST_ID)
        p = put_le(p, msg->request_id, 8);
    p = put_le(p, msg->size, 4);
    if (msg->size)
        memcpy(p, msg->data, msg->size);
    batch->size += need;
    batch->count++;
    return 0;
}

int wire_batch_end(wire_batch *batch) {
    if (!batch || !batch->buf || batch->count == 0)
        return SPOOL_EINVAL;
    put_le(batch->buf + WIRE_DATA_COUNT_AT, batch->count, 4);
    return (int)batch->size;
}

/* The offset of a MEMBERS packet's count. */
#define WIRE_MEMBERS_COUNT_AT (WIRE_HEADER_SIZE + 8)

int wire_members_begin(wire_members_builder *builder, void *buf, size_t capacity,
                       uint64_t session) {
    if (!builder)
        return SPOOL_EINVAL;
    memset(builder, 0, sizeof *builder);
    if (!buf)
        return SPOOL_EINVAL;
    if (capacity < WIRE_HEADER_SIZE + WIRE_MEMBERS_FIXED)
        return SPOOL_EFULL;
    unsigned char *p = put_header(buf, WIRE_MEMBERS);
    p = put_le(p, session, 8);
    put_le(p, 0, 2); /* the count, written by wire_members_end */
    builder->buf = buf;
    builder->capacity = capacity;
    builder->size = WIRE_HEADER_SIZE + WIRE_MEMBERS_FIXED;
    return 0;
}

int wire_members_add(wire_members_builder *builder, const char *name, const char *endpoint) {
    if (!builder || !builder->buf || !name || !endpoint)
        return SPOOL_EINVAL;
    size_t name_len = name_length(name), endpoint_len = endpoint_length(endpoint);
    if (!name_len || !endpoint_len)
        return SPOOL_EINVAL;
    size_t need = 2 + name_len + endpoint_len;
    if (builder->count >= WIRE_MEMBERS_MAX_COUNT || need > builder->capacity - builder->size ||
        need > (size_t)INT_MAX - builder->size)
        return SPOOL_EFULL;
    unsigned char *p = builder->buf + builder->size;
    *p++ = (unsigned char)name_len;
    memcpy(p, name, name_len);
    p += name_len;
    *p++ = (unsigned char)endpoint_len;
    memcpy(p, endpoint, endpoint_len);
    builder->size += need;
    builder->count++;
    return 0;
}

int wire_members_end(wire_members_builder *builder) {
    if (!builder || !builder->buf || builder->count == 0)
        return SPOOL_EINVAL;
    put_le(builder->buf + WIRE_MEMBERS_COUNT_AT, builder->count, 2);
    return (int)builder->size;
}
