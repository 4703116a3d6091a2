/*
 * zap.h - who may connect to a node: the ZAP handler (RFC 27, ZAP 1.0) that lets in only the CURVE
 * keys of the allowlist and names the node each key speaks for, the setup of CURVE server and
 * client sockets, and reading that name back from a received message. The net thread owns all of
 * it; a message from another node passes here once per connection, at the handshake.
 *
 * Why a handler at all. A libzmq 4.3.4 CURVE server with no ZAP handler accepts any client key, and
 * a client's routing id or HELLO says whatever the client likes. The handler is the only place
 * that sees the client's public key: it answers "200" with User-Id = the node name the key speaks
 * for (keys_allowlist_find_binary), or a refusal. libzmq then attaches User-Id to every message of
 * that connection, and zap_peer_name reads it back. A node's name therefore comes from its key
 * alone; the net layer must check that a HELLO's name equals it.
 *
 * Order. One handler per ZeroMQ context, bound to ZAP_ENDPOINT ("inproc://zeromq.zap.01") on the
 * same context as the CURVE server sockets and before any of them binds or accepts; closed after
 * them. curve_server also sets ZMQ_ZAP_ENFORCE_DOMAIN, so a server whose handler is missing (not
 * yet bound, or already closed) refuses every client instead of accepting any key: fail closed.
 * (zmq.h 4.3.4 lists ZMQ_ZAP_ENFORCE_DOMAIN, 93, among the DRAFT options only, but the stable
 * library accepts and honours it; tests/test_zap.c proves the refusal without a handler.)
 *
 * What is answered, checked in this order. Fewer than 6 frames or a version other than "1.0":
 * "500" malformed. Domain other than ZAP_DOMAIN: "400" wrong_domain. Mechanism other than "CURVE":
 * "400" wrong_mechanism. A CURVE request of other than 7 frames or with a credential that is not
 * exactly 32 bytes: "500" malformed (libzmq never sends such a thing: it can only come from code in
 * this process). A key not in the allowlist: "400" unknown_key. Every request gets a reply of 6
 * frames (a REP socket must answer before it reads again); it echoes the request id when there was
 * one, and its status text says why. The handler keeps at most 8 frames of a request (the rest are
 * read and dropped), allocates nothing itself to serve one (the request id goes back as the very
 * frame that came in), and nothing in a request makes it read out of bounds or stop serving.
 */
#ifndef SPOOL_NODES_ZAP_H
#define SPOOL_NODES_ZAP_H

#include "nodes/keys.h"
#include "spool.h"

#include <stddef.h>
#include <stdint.h>
#include <zmq.h>

#define ZAP_ENDPOINT "inproc://zeromq.zap.01" /* fixed by libzmq */
#define ZAP_DOMAIN "spool"                    /* the ZAP domain of every node socket */

/* Why a request was refused: X(enum suffix, counter name, status code, status text). */
#define ZAP_REFUSAL_MAP(X)                                                                         \
    X(UNKNOWN_KEY, "unknown_key", "400", "key not in the allowlist")                               \
    X(WRONG_MECHANISM, "wrong_mechanism", "400", "only CURVE is accepted")                         \
    X(WRONG_DOMAIN, "wrong_domain", "400", "not the spool ZAP domain")                             \
    X(MALFORMED, "malformed", "500", "malformed ZAP request")

typedef enum zap_refusal {
#define ZAP_REFUSAL_ENUM(name, counter, status, text) ZAP_REFUSED_##name,
    ZAP_REFUSAL_MAP(ZAP_REFUSAL_ENUM)
#undef ZAP_REFUSAL_ENUM
        ZAP_REFUSAL_COUNT
} zap_refusal;

/* The counter name of a reason ("unknown_key", ...), or "?" out of range. */
const char *zap_refusal_name(zap_refusal reason);

/* Requests answered since zap_open. */
typedef struct zap_counts {
    uint64_t accepted;                   /* "200" */
    uint64_t refused[ZAP_REFUSAL_COUNT]; /* by reason */
} zap_counts;

/* What the last request got, for the owner's log line. */
typedef struct zap_verdict {
    int accepted;                 /* 1: "200" */
    zap_refusal reason;           /* when refused */
    char status[4];               /* "200", "400" or "500" */
    char node[KEYS_NAME_MAX + 1]; /* accepted: the node the key speaks for; else "" */
    char address[64];             /* the peer address libzmq gave, '?' for unprintable bytes */
    char text[96];                /* the status text sent back */
} zap_verdict;

typedef struct zap_handler zap_handler;

/*
 * Creates the handler of `zmq_ctx`: a REP socket bound to ZAP_ENDPOINT that answers from `allow`.
 * `allow` is borrowed (it must outlive the handler); its allocator is the one used here. Call it
 * before any CURVE server socket of the context binds. Errors, with a line in err: SPOOL_EINVAL
 * (NULL argument), SPOOL_EEXIST (the context already has a ZAP handler), SPOOL_ENOMEM,
 * SPOOL_ESTOPPED (the context is terminating), SPOOL_ESYSTEM (libzmq refused; its words in err).
 * On error *out is NULL and nothing is bound.
 * The thread that will own the handler.
 */
int zap_open(void *zmq_ctx, const keys_allowlist *allow, zap_handler **out, char *err,
             size_t err_size);

/* The REP socket, for the owner's zmq_poll (ZMQ_POLLIN: call zap_serve_one). Owner thread. */
void *zap_socket(zap_handler *handler);

/*
 * Reads one waiting request, all its frames, and answers it; never blocks. Returns 0 when one was
 * answered (accepted or refused: see zap_stats and zap_last_verdict), SPOOL_ETIMEDOUT when none
 * was waiting (not an error), SPOOL_ESTOPPED when the context is terminating, SPOOL_ESYSTEM when
 * the socket failed, SPOOL_EINVAL for NULL. Owner thread.
 */
int zap_serve_one(zap_handler *handler);

/* The counts since zap_open. Any thread: each counter is read atomically, the set is not a
 * snapshot. */
void zap_stats(const zap_handler *handler, zap_counts *out);

/* The verdict on the last request answered (all zeros before the first). Owner thread. */
void zap_last_verdict(const zap_handler *handler, zap_verdict *out);

/* Closes the socket, frees the handler and sets *handler to NULL; NULL is fine. Close the CURVE
 * server sockets first (or accept that they refuse every new client). Owner thread. */
void zap_close(zap_handler **handler);

/*
 * Makes `socket` a CURVE server with `self`'s secret key, ZAP domain ZAP_DOMAIN and
 * ZMQ_ZAP_ENFORCE_DOMAIN=1. Call before zmq_bind. Errors, with a line in err: SPOOL_EINVAL (NULL,
 * not a socket, a key that is not 40 Z85 characters or that libzmq cannot decode), SPOOL_ECONFIG
 * (a libzmq without CURVE, or without ZMQ_ZAP_ENFORCE_DOMAIN: fail closed rather than open),
 * SPOOL_ESTOPPED (the context is terminating), SPOOL_ESYSTEM (another socket option failure).
 * Never quotes a key. The thread that owns the socket.
 */
int curve_server(void *socket, const keys_pair *self, char *err, size_t err_size);

/*
 * Makes `socket` a CURVE client with `self`'s key pair that accepts only the server whose public
 * key is `server_public` (32 bytes). Call before zmq_connect. Errors as curve_server (a NULL
 * server_public is SPOOL_EINVAL).
 */
int curve_client(void *socket, const keys_pair *self, const uint8_t server_public[KEYS_BINARY_SIZE],
                 char *err, size_t err_size);

/*
 * Copies into out the node name the ZAP handler gave the connection `msg` came from (its
 * "User-Id"). Errors: SPOOL_ENOENT (no User-Id, or one that is not a node name: the connection was
 * not authenticated by this handler, e.g. a plain socket), SPOOL_EINVAL (NULL, or out_size too
 * small for the name and its NUL; out is then ""). Any thread, on a message it holds.
 */
int zap_peer_name(zmq_msg_t *msg, char *out, size_t out_size);

#endif
