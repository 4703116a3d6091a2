/*
 * wire.h - the packets nodes exchange, version 1: their format, a strict parser and the writers.
 * Every ZeroMQ message between two nodes is one frame holding one packet; the net thread parses
 * what it receives with wire_parse and builds what it sends with the writers below. Nothing here
 * allocates, blocks or keeps state between calls: any thread, each on its own packets.
 *
 * A packet: an 8-byte header, then a body of the kind's layout. All integers are little-endian and
 * of fixed width; names and reasons are a length byte then the bytes.
 *
 *   header    "SPN1", u8 version (1), u8 kind, u16 flags (0)
 *   HELLO     u64 cluster, u64 incarnation, u64 session, u32 heartbeat_ms, u32 max_message,
 *             u8 name_len (1..63), name ([A-Za-z0-9_.-], not starting with '.' or '-'),
 *             u8 endpoint_len (1..255), endpoint (printable ASCII without space, 0x21..0x7e)
 *   WELCOME   the HELLO body, then u64 echo_session
 *   HEARTBEAT, HEARTBEAT_ACK
 *             u64 session, u64 sent_ns (ACK: the echoed sent_ns), u64 last_seq_received
 *   GOODBYE   u64 session, u8 reason_len (0..255), reason (bytes, not checked)
 *   DATA      u64 session, u64 first_seq, u32 count (1..65535), then count messages:
 *             u64 to, u64 from, u32 type, u32 flags, [u64 request_id], u32 size, payload
 *   FRAGMENT  u64 session, u64 seq, u64 total_size, u64 offset, u64 to, u64 from, u32 type,
 *             u32 flags, u64 request_id (always), u32 piece_size (1..1 MiB), piece
 *   MEMBERS   u64 session, u16 count (1..1024), then count members: u8 name_len (1..63), name,
 *             u8 endpoint_len (1..255), endpoint (both as in HELLO): the sender's peers in session
 *             and where it reaches them, so that a node that joined one member meets the others
 *
 * The parser refuses, with the reason and the byte offset in err: a wrong magic, version, kind or
 * header flags; anything truncated (a count or size is never believed beyond the bytes left);
 * trailing bytes (every packet must end exactly where its layout ends); reserved message flag bits;
 * names out of 1..63 bytes or with another character; endpoints out of 1..255 bytes or with a byte
 * outside 0x21..0x7e; ids using the high 16 bits; DATA and MEMBERS counts of 0;
 * FRAGMENT pieces that are empty or end past total_size. SPOOL_EMSGSIZE for what is over a limit
 * (the packet over 8 + max_packet, a DATA count over 65535, a MEMBERS count over 1024, a piece over
 * 1 MiB, a message or total_size over max_message), SPOOL_EINVAL for everything else.
 *
 * Where the spec (version 1) left a choice, this is what was chosen:
 *  - Default max_packet: 1 MiB + 68 bytes of body, not the 1 MiB + 64 of the spec's sketch: a
 *    FRAGMENT has 68 bytes of fixed body, so its largest legal piece (1 MiB) would otherwise be
 *    refused by a receiver with the default limits. (The largest single-message DATA, 1 MiB of
 *    payload with a request_id, needs 1 MiB + 56.)
 *  - WELCOME's echo_session follows the endpoint, at the end of the body.
 *  - HELLO carries the sender's listen endpoint (where the receiver connects its own socket back
 *    to the sender: a node's ROUTER only receives). The parser checks only its bytes; whether it
 *    is an endpoint the receiver may connect to is the node layer's business. WELCOME carries the
 *    same field, so that a joiner learns it too.
 *  - wire_parse validates every message of a DATA packet before it returns (one walk over their
 *    headers), so a packet is taken whole or refused whole: a receiver never delivers the front of
 * a batch whose end is bad. wire_data_next then cannot fail on a packet wire_parse accepted.
 *  - `from` is held to 48 bits like `to` ("sender's local actor id (48 bits) or 0").
 *  - Sequence numbers start at 1: a DATA first_seq or FRAGMENT seq of 0 is refused, and so is a
 *    DATA batch whose last seq (first_seq + count - 1) would wrap past 2^64 - 1.
 *  - A message's flags may combine bits 0..3 freely (what a combination means is the node layer's
 *    business); only the reserved bits 4..31 are refused. request_id is present in a DATA message
 *    exactly when one of bits 0..2 is set. In a FRAGMENT, where request_id is always present, it
 *    must be 0 when none of bits 0..2 is set ("0 if none"); the writers refuse the same of a
 *    wire_msg whose request_id is not 0 without those bits, so that a parse gives back what was
 *    written.
 *  - limits.max_message bounds the payload of a DATA message too (it is the receiver's largest
 *    message), not only a FRAGMENT's total_size. Values in HELLO (heartbeat_ms, max_message) are
 *    not judged here; that a FRAGMENT's header matches the first fragment of its message is the
 *    reassembler's check (it needs the state of earlier packets).
 *  - Writers never write what the parser (with limits large enough) would refuse: they check the
 *    same rules and return SPOOL_EINVAL (SPOOL_EMSGSIZE for a reason over 255 bytes or a piece over
 *    1 MiB); a buffer too small is SPOOL_EFULL, as for the batch builder. They return the bytes
 *    written as an int, so no packet they build exceeds INT_MAX bytes.
 */
#ifndef SPOOL_NODES_WIRE_H
#define SPOOL_NODES_WIRE_H

#include "spool.h"

#include <stddef.h>
#include <stdint.h>

#define WIRE_MAGIC "SPN1"
#define WIRE_VERSION 1
#define WIRE_HEADER_SIZE 8

#define WIRE_NAME_MAX 63               /* bytes of a node name (at least 1) */
#define WIRE_ENDPOINT_MAX 255          /* bytes of a HELLO's endpoint (at least 1) */
#define WIRE_REASON_MAX 255            /* bytes of a GOODBYE reason */
#define WIRE_DATA_MAX_COUNT 65535      /* messages in one DATA packet */
#define WIRE_PIECE_MAX (1u << 20)      /* bytes of one FRAGMENT piece */
#define WIRE_ID_MASK 0xffffffffffffull /* actor ids on the wire: 48 bits (generation | slot) */

/* Fixed body sizes (after the header), without names, reasons, payloads and pieces. */
#define WIRE_HELLO_FIXED 34    /* and name_len bytes of name, endpoint_len bytes of endpoint */
#define WIRE_WELCOME_FIXED 42  /* the HELLO body + echo_session */
#define WIRE_HEARTBEAT_BODY 24 /* HEARTBEAT and HEARTBEAT_ACK */
#define WIRE_GOODBYE_FIXED 9   /* and reason_len bytes */
#define WIRE_DATA_FIXED 20     /* and the messages */
#define WIRE_MSG_FIXED 28      /* a DATA message without request_id and payload */
#define WIRE_FRAGMENT_FIXED 68 /* and piece_size bytes */
#define WIRE_MEMBERS_FIXED 10  /* and the members */
#define WIRE_MEMBER_MIN 4 /* the smallest member: 1-byte name and endpoint, and their lengths */
#define WIRE_MEMBERS_MAX_COUNT 1024

#define WIRE_DEFAULT_MAX_PACKET ((size_t)WIRE_PIECE_MAX + WIRE_FRAGMENT_FIXED)
#define WIRE_DEFAULT_MAX_MESSAGE ((size_t)64 << 20)

/* wire_msg.flags */
#define WIRE_MSG_REQUEST 0x1u     /* a request: request_id says which */
#define WIRE_MSG_REPLY 0x2u       /* the reply to request_id */
#define WIRE_MSG_ERROR 0x4u       /* an error reply to request_id */
#define WIRE_MSG_EXIT 0x8u        /* an exit notice (DOWN) */
#define WIRE_MSG_KNOWN_FLAGS 0xfu /* any other bit is reserved: refused */
#define WIRE_MSG_HAS_REQUEST_ID                                                                    \
    0x7u /* a DATA message carries request_id when one of these is set */

/* What a receiver accepts. Zero fields (or a NULL pointer) mean the defaults. */
typedef struct wire_limits {
    size_t max_packet;  /* body bytes of one packet (the packet is at most 8 + max_packet) */
    size_t max_message; /* payload bytes of one message, whole (FRAGMENT total_size) or not */
} wire_limits;

typedef enum wire_kind {
    WIRE_HELLO = 1,
    WIRE_WELCOME = 2,
    WIRE_HEARTBEAT = 3,
    WIRE_HEARTBEAT_ACK = 4,
    WIRE_GOODBYE = 5,
    WIRE_DATA = 6,
    WIRE_FRAGMENT = 7,
    WIRE_MEMBERS = 8,
} wire_kind;

/* HELLO and WELCOME (control). */
typedef struct wire_hello {
    uint64_t cluster;     /* hash of the cluster name */
    uint64_t incarnation; /* random per node start */
    uint64_t session;     /* random per connection attempt */
    uint32_t heartbeat_ms;
    uint32_t max_message;
    char name[WIRE_NAME_MAX + 1]; /* NUL-terminated, 1..63 bytes of [A-Za-z0-9_.-] */
    /* NUL-terminated, 1..255 bytes of 0x21..0x7e: where the sender listens ("tcp://host:port") */
    char endpoint[WIRE_ENDPOINT_MAX + 1];
    uint64_t echo_session; /* WELCOME only: the session of the HELLO it answers */
} wire_hello;

/* HEARTBEAT and HEARTBEAT_ACK (control). */
typedef struct wire_heartbeat {
    uint64_t session;
    uint64_t sent_ns; /* HEARTBEAT: the sender's monotonic clock; ACK: the HEARTBEAT's, echoed */
    uint64_t last_seq_received;
} wire_heartbeat;

/* GOODBYE (control). */
typedef struct wire_goodbye {
    uint64_t session;
    const char *reason; /* parse: points into the packet; not NUL-terminated */
    size_t reason_len;  /* 0..255 */
} wire_goodbye;

/* One message: an element of a DATA packet, or the header of a FRAGMENT. */
typedef struct wire_msg {
    uint64_t to;         /* 48 bits; 0 = the receiving node itself */
    uint64_t from;       /* 48 bits, or 0 */
    uint32_t type;       /* spool_message.type */
    uint32_t flags;      /* WIRE_MSG_* */
    uint64_t request_id; /* 0 unless flags & WIRE_MSG_HAS_REQUEST_ID */
    const void *data;    /* parse: points into the packet; FRAGMENT: unused (see piece) */
    uint32_t size;       /* payload bytes; FRAGMENT: unused */
} wire_msg;

/* The fixed fields of a DATA packet. */
typedef struct wire_data {
    uint64_t session;
    uint64_t first_seq; /* the seq of the first message; each next one is +1 */
    uint32_t count;     /* 1..65535 */
} wire_data;

/* FRAGMENT (data): one piece of one large message. */
typedef struct wire_fragment {
    uint64_t session;
    uint64_t seq;        /* of the whole message */
    uint64_t total_size; /* payload bytes of the whole message */
    uint64_t offset;     /* where the piece goes; offset + piece_size <= total_size */
    wire_msg header;     /* to, from, type, flags, request_id (data and size unused) */
    const void *piece;   /* parse: points into the packet */
    uint32_t piece_size; /* 1..WIRE_PIECE_MAX */
} wire_fragment;

/* The fixed fields of MEMBERS (control). */
typedef struct wire_members {
    uint64_t session;
    uint16_t count; /* 1..1024 */
} wire_members;

/* One member of a MEMBERS packet, copied out (NUL-terminated). */
typedef struct wire_member {
    char name[WIRE_NAME_MAX + 1];
    char endpoint[WIRE_ENDPOINT_MAX + 1];
} wire_member;

/* A parsed packet. Its pointers point into the bytes given to wire_parse: valid while they are. */
typedef struct wire_packet {
    wire_kind kind;
    size_t size; /* bytes of the whole packet */
    union {
        wire_hello hello;         /* WIRE_HELLO, WIRE_WELCOME */
        wire_heartbeat heartbeat; /* WIRE_HEARTBEAT, WIRE_HEARTBEAT_ACK */
        wire_goodbye goodbye;     /* WIRE_GOODBYE */
        wire_data data;           /* WIRE_DATA: messages through wire_data_next */
        wire_fragment fragment;   /* WIRE_FRAGMENT */
        wire_members members;     /* WIRE_MEMBERS: members through wire_members_next */
    };
    /* wire_data_next's and wire_members_next's place; not for the caller */
    const unsigned char *bytes;
    size_t cursor;
    uint32_t delivered;
    size_t max_message;
} wire_packet;

/* "HELLO", "DATA", ... for a kind; "unknown" for anything else. Never NULL. */
const char *wire_kind_name(int kind);

/*
 * Parses and validates the n bytes at p as one packet into *out (zeroed first, and again on
 * error). For DATA, every message is validated here; read them with wire_data_next. `limits` may
 * be NULL (the defaults). Never reads outside p[0..n), never allocates. err (NULL-safe) says what
 * and at which byte offset, e.g. "truncated: name at offset 41 needs 5 bytes, 2 left".
 * Errors: SPOOL_EINVAL (malformed), SPOOL_EMSGSIZE (over a limit).
 */
int wire_parse(const void *p, size_t n, const wire_limits *limits, wire_packet *out, char *err,
               size_t err_size);

/*
 * The next message of a DATA packet that wire_parse accepted: fills *out (its data points into the
 * packet) and returns 1; returns 0 after the last. The seq of the i-th message (from 0) is
 * first_seq + i. Errors: SPOOL_EINVAL (not a parsed DATA packet; a packet whose bytes changed
 * since wire_parse is refused the same way, never read past its end).
 */
int wire_data_next(wire_packet *packet, wire_msg *out, char *err, size_t err_size);

/*
 * The next member of a MEMBERS packet that wire_parse accepted (which validated every member):
 * fills *out and returns 1; returns 0 after the last. Errors: SPOOL_EINVAL (not a parsed MEMBERS
 * packet).
 */
int wire_members_next(wire_packet *packet, wire_member *out, char *err, size_t err_size);

/*
 * Writers: each *_size gives the bytes the packet will take (0 if the fields are invalid), each
 * *_write writes it at buf (capacity bytes) and returns the bytes written, or SPOOL_EFULL
 * (capacity too small: nothing meaningful written), SPOOL_EINVAL (a field the parser would refuse),
 * SPOOL_EMSGSIZE (a reason over 255 bytes, a piece over 1 MiB). `kind` picks HELLO or WELCOME,
 * HEARTBEAT or HEARTBEAT_ACK. Any thread.
 */
size_t wire_hello_size(const wire_hello *hello, wire_kind kind);
int wire_hello_write(void *buf, size_t capacity, wire_kind kind, const wire_hello *hello);
size_t wire_heartbeat_size(void);
int wire_heartbeat_write(void *buf, size_t capacity, wire_kind kind,
                         const wire_heartbeat *heartbeat);
size_t wire_goodbye_size(const wire_goodbye *goodbye);
int wire_goodbye_write(void *buf, size_t capacity, const wire_goodbye *goodbye);
/* fragment->header.data and .size are ignored. */
size_t wire_fragment_size(const wire_fragment *fragment);
int wire_fragment_write(void *buf, size_t capacity, const wire_fragment *fragment);
/* The bytes a message takes inside a DATA packet (0 if invalid). */
size_t wire_msg_size(const wire_msg *msg);

/*
 * The DATA batch builder: begin, add messages while they fit, end. The buffer is the caller's;
 * the batch only remembers where it writes.
 */
typedef struct wire_batch {
    unsigned char *buf;
    size_t capacity;
    size_t size; /* bytes written so far */
    uint64_t first_seq;
    uint32_t count;
} wire_batch;

/* Starts a batch at buf. Errors: SPOOL_EINVAL (NULL, first_seq 0), SPOOL_EFULL (capacity below
 * the 28 bytes of header and fixed fields). */
int wire_batch_begin(wire_batch *batch, void *buf, size_t capacity, uint64_t session,
                     uint64_t first_seq);
/* Appends one message (its payload copied). Returns 0, or SPOOL_EFULL when it does not fit (the
 * capacity, 65535 messages, INT_MAX bytes), or SPOOL_EINVAL (a field the parser would refuse, a
 * seq past 2^64 - 1); on error the batch is unchanged and still ends into a valid packet. */
int wire_batch_add(wire_batch *batch, const wire_msg *msg);
/* Writes the count; returns the packet's bytes, or SPOOL_EINVAL for a batch with no message (DATA
 * of count 0 is refused). Messages may still be added and the batch ended again. */
int wire_batch_end(wire_batch *batch);

/*
 * The MEMBERS builder, like the DATA one: begin, add members while they fit, end. Errors of begin:
 * SPOOL_EINVAL (NULL), SPOOL_EFULL (capacity below the 18 bytes of header and fixed fields). add
 * returns 0, SPOOL_EFULL (the capacity, 1024 members, INT_MAX bytes) or SPOOL_EINVAL (a name or
 * endpoint the parser would refuse), the builder unchanged on error. end returns the packet's
 * bytes, or SPOOL_EINVAL with no member (a count of 0 is refused).
 */
typedef struct wire_members_builder {
    unsigned char *buf;
    size_t capacity;
    size_t size; /* bytes written so far */
    uint16_t count;
} wire_members_builder;

int wire_members_begin(wire_members_builder *builder, void *buf, size_t capacity, uint64_t session);
int wire_members_add(wire_members_builder *builder, const char *name, const char *endpoint);
int wire_members_end(wire_members_builder *builder);

#endif
