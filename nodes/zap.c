/*
 * zap.c - the ZAP handler that decides which CURVE keys may connect to a node and which node name
 * each speaks for, the CURVE socket setup and the peer name read back from a message (the design
 * is in zap.h). It runs in the net thread, once per connection handshake, before any of the
 * connection's messages arrive.
 */
#include "nodes/zap.h"

#include "mailbox/atomic.h"
#include "mailbox/memory.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

/* In zmq.h 4.3.4 only under ZMQ_BUILD_DRAFT_API, yet the stable library takes it (see zap.h). */
#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93
#endif

/* The frames of a request, in the order of RFC 27. */
enum {
    ZAP_FRAME_VERSION,
    ZAP_FRAME_REQUEST_ID,
    ZAP_FRAME_DOMAIN,
    ZAP_FRAME_ADDRESS,
    ZAP_FRAME_ROUTING_ID,
    ZAP_FRAME_MECHANISM,
    ZAP_FRAME_CREDENTIALS,
    ZAP_CURVE_FRAMES,      /* a CURVE request has exactly this many */
    ZAP_FRAMES_KEPT = 8,   /* frames of one request held at once; later ones are read and dropped */
    ZAP_MINIMUM_FRAMES = 6 /* what every mechanism sends (NULL has no credentials) */
};

struct zap_handler {
    void *socket;                /* REP bound to ZAP_ENDPOINT; owner thread */
    const keys_allowlist *allow; /* borrowed; owner thread */
    spool_allocator allocator;   /* the allowlist's, which this struct came from */
    /* Written by the owner thread only (a plain increment of the value it last wrote), read by any
     * thread (zap_stats): atomic loads and stores so a reader never sees half a counter. */
    uint64_t accepted;
    uint64_t refused[ZAP_REFUSAL_COUNT];
    zap_verdict last; /* owner thread */
};

static const struct {
    const char *name;
    const char *status;
    const char *text;
} zap_refusals[ZAP_REFUSAL_COUNT] = {
#define ZAP_REFUSAL_ROW(suffix, counter, status, text)                                             \
    [ZAP_REFUSED_##suffix] = {counter, status, text},
    ZAP_REFUSAL_MAP(ZAP_REFUSAL_ROW)
#undef ZAP_REFUSAL_ROW
};

static void zap_say(char *err, size_t err_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void zap_say(char *err, size_t err_size, const char *format, ...) {
    if (err == NULL || err_size == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(err, err_size, format, args);
    va_end(args);
}

/* A libzmq call failed with errno `error`: says so and picks the code. */
static int zap_zmq_error(int error, const char *what, char *err, size_t err_size) {
    zap_say(err, err_size, "%s: %s", what, zmq_strerror(error));
    if (error == EINVAL || error == ENOTSOCK || error == EFAULT)
        return SPOOL_EINVAL;
    if (error == ETERM)
        return SPOOL_ESTOPPED;
    return SPOOL_ESYSTEM;
}

const char *zap_refusal_name(zap_refusal reason) {
    if ((unsigned)reason >= ZAP_REFUSAL_COUNT)
        return "?";
    return zap_refusals[reason].name;
}

/* ---------------------------------------------------------------------------------------------- */
/* The handler                                                                                    */
/* ---------------------------------------------------------------------------------------------- */

int zap_open(void *zmq_ctx, const keys_allowlist *allow, zap_handler **out, char *err,
             size_t err_size) {
    if (out != NULL)
        *out = NULL;
    if (zmq_ctx == NULL || allow == NULL || out == NULL) {
        zap_say(err, err_size, "zap_open: no context, allowlist or place for the handler");
        return SPOOL_EINVAL;
    }
    zap_handler *h = memory_calloc(&allow->allocator, sizeof *h);
    if (h == NULL) {
        zap_say(err, err_size, "out of memory making the ZAP handler");
        return SPOOL_ENOMEM;
    }
    h->allow = allow;
    h->allocator = allow->allocator;
    h->socket = zmq_socket(zmq_ctx, ZMQ_REP);
    int rc = 0;
    if (h->socket == NULL) {
        rc = zap_zmq_error(errno, "cannot make the ZAP handler's socket", err, err_size);
    } else {
        /* Replies still queued when the handler closes are of no use to anyone. */
        int zero = 0;
        if (zmq_setsockopt(h->socket, ZMQ_LINGER, &zero, sizeof zero) != 0)
            rc = zap_zmq_error(errno, "cannot set ZMQ_LINGER on the ZAP socket", err, err_size);
    }
    if (rc == 0 && zmq_bind(h->socket, ZAP_ENDPOINT) != 0) {
        int error = errno;
        if (error == EADDRINUSE) {
            zap_say(err, err_size,
                    "this ZeroMQ context already has a ZAP handler (%s is bound): one per context",
                    ZAP_ENDPOINT);
            rc = SPOOL_EEXIST;
        } else {
            rc =
                zap_zmq_error(error, "cannot bind the ZAP handler to " ZAP_ENDPOINT, err, err_size);
        }
    }
    if (rc != 0) {
        if (h->socket != NULL)
            zmq_close(h->socket);
        memory_free(&h->allocator, h, sizeof *h);
        return rc;
    }
    *out = h;
    return 0;
}

void *zap_socket(zap_handler *handler) { return handler != NULL ? handler->socket : NULL; }

/* Whether a frame holds exactly the NUL-less string `text`. */
static bool zap_frame_is(zmq_msg_t *frame, const char *text) {
    size_t length = strlen(text);
    return zmq_msg_size(frame) == length && memcmp(zmq_msg_data(frame), text, length) == 0;
}

/* Copies a frame that a peer controls into out as text: at most out_size - 1 bytes, each byte that
 * is not printable ASCII replaced by '?', so a log line built from it stays one clean line. */
static void zap_copy_printable(zmq_msg_t *frame, char *out, size_t out_size) {
    const unsigned char *data = zmq_msg_data(frame);
    size_t length = zmq_msg_size(frame);
    if (length > out_size - 1)
        length = out_size - 1;
    for (size_t i = 0; i < length; i++)
        out[i] = data[i] >= 0x20 && data[i] < 0x7f ? (char)data[i] : '?';
    out[length] = '\0';
}

/* The verdict is a refusal for `reason`, with `detail` (may be NULL) after its status text. */
static void zap_refuse(zap_verdict *verdict, zap_refusal reason, const char *detail) {
    verdict->accepted = 0;
    verdict->reason = reason;
    snprintf(verdict->status, sizeof verdict->status, "%s", zap_refusals[reason].status);
    if (detail != NULL)
        snprintf(verdict->text, sizeof verdict->text, "%s: %s", zap_refusals[reason].text, detail);
    else
        snprintf(verdict->text, sizeof verdict->text, "%s", zap_refusals[reason].text);
}

/* Decides on a request of `total` frames, the first `kept` of which are in frames. */
static void zap_decide(const zap_handler *h, zmq_msg_t *frames, size_t kept, size_t total,
                       zap_verdict *verdict) {
    memset(verdict, 0, sizeof *verdict);
    if (kept > ZAP_FRAME_ADDRESS)
        zap_copy_printable(&frames[ZAP_FRAME_ADDRESS], verdict->address, sizeof verdict->address);
    char detail[64];
    if (total < ZAP_MINIMUM_FRAMES) {
        snprintf(detail, sizeof detail, "%zu frames, ZAP 1.0 has at least %d", total,
                 ZAP_MINIMUM_FRAMES);
        zap_refuse(verdict, ZAP_REFUSED_MALFORMED, detail);
        return;
    }
    if (!zap_frame_is(&frames[ZAP_FRAME_VERSION], "1.0")) {
        zap_refuse(verdict, ZAP_REFUSED_MALFORMED, "version is not 1.0");
        return;
    }
    if (!zap_frame_is(&frames[ZAP_FRAME_DOMAIN], ZAP_DOMAIN)) {
        zap_refuse(verdict, ZAP_REFUSED_WRONG_DOMAIN, NULL);
        return;
    }
    if (!zap_frame_is(&frames[ZAP_FRAME_MECHANISM], "CURVE")) {
        zap_refuse(verdict, ZAP_REFUSED_WRONG_MECHANISM, NULL);
        return;
    }
    if (total != ZAP_CURVE_FRAMES) {
        snprintf(detail, sizeof detail, "CURVE request of %zu frames, want %d", total,
                 ZAP_CURVE_FRAMES);
        zap_refuse(verdict, ZAP_REFUSED_MALFORMED, detail);
        return;
    }
    zmq_msg_t *key = &frames[ZAP_FRAME_CREDENTIALS];
    if (zmq_msg_size(key) != KEYS_BINARY_SIZE) {
        snprintf(detail, sizeof detail, "CURVE key of %zu bytes, want %d", zmq_msg_size(key),
                 KEYS_BINARY_SIZE);
        zap_refuse(verdict, ZAP_REFUSED_MALFORMED, detail);
        return;
    }
    const char *name = keys_allowlist_find_binary(h->allow, zmq_msg_data(key));
    if (name == NULL) {
        zap_refuse(verdict, ZAP_REFUSED_UNKNOWN_KEY, NULL);
        return;
    }
    verdict->accepted = 1;
    snprintf(verdict->status, sizeof verdict->status, "200");
    snprintf(verdict->node, sizeof verdict->node, "%s", name);
    snprintf(verdict->text, sizeof verdict->text, "OK");
}

/* zmq_msg_recv, again after a signal. */
static int zap_receive_frame(zmq_msg_t *frame, void *socket, int flags) {
    int rc;
    do
        rc = zmq_msg_recv(frame, socket, flags);
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -1 : 0;
}

/* zmq_send of a small constant frame; a REP reply never waits, so ZMQ_DONTWAIT costs nothing. */
static int zap_send_text(void *socket, const char *text, int more) {
    int rc;
    do
        rc = zmq_send(socket, text, strlen(text), ZMQ_DONTWAIT | (more ? ZMQ_SNDMORE : 0));
    while (rc < 0 && errno == EINTR);
    return rc < 0 ? -1 : 0;
}

/*
 * The reply of RFC 27: version, request id, status code, status text, user id, metadata. The
 * request id is the request's own frame, sent on without a copy (it may be large: it is the
 * peer's to choose); an empty one when the request had none.
 */
static int zap_reply(void *socket, zmq_msg_t *frames, size_t kept, const zap_verdict *verdict) {
    if (zap_send_text(socket, "1.0", 1) != 0)
        return -1;
    int rc;
    if (kept > ZAP_FRAME_REQUEST_ID) {
        do
            rc = zmq_msg_send(&frames[ZAP_FRAME_REQUEST_ID], socket, ZMQ_DONTWAIT | ZMQ_SNDMORE);
        while (rc < 0 && errno == EINTR);
        if (rc < 0)
            return -1;
    } else if (zap_send_text(socket, "", 1) != 0) {
        return -1;
    }
    if (zap_send_text(socket, verdict->status, 1) != 0 ||
        zap_send_text(socket, verdict->text, 1) != 0 ||
        zap_send_text(socket, verdict->node, 1) != 0 || zap_send_text(socket, "", 0) != 0)
        return -1;
    return 0;
}

/* Adds one to a counter only the owner thread writes; see struct zap_handler. */
static void zap_count(uint64_t *counter) {
    /* Single writer: a load and a store suffice, atomic only so that readers see a whole value. */
    pr_store_64_relaxed(counter, pr_load_64_relaxed(counter) + 1);
}

int zap_serve_one(zap_handler *h) {
    if (h == NULL)
        return SPOOL_EINVAL;
    zmq_msg_t frames[ZAP_FRAMES_KEPT];
    size_t kept = 0, total = 0;
    int rc = 0;

    zmq_msg_init(&frames[0]);
    if (zap_receive_frame(&frames[0], h->socket, ZMQ_DONTWAIT) != 0) {
        int error = errno;
        zmq_msg_close(&frames[0]);
        if (error == EAGAIN)
            return SPOOL_ETIMEDOUT;
        return error == ETERM ? SPOOL_ESTOPPED : SPOOL_ESYSTEM;
    }
    kept = total = 1;
    /* The rest of the message: its frames are all there once the first is (ZeroMQ delivers a
     * message whole), so these receives do not wait. Past ZAP_FRAMES_KEPT a frame is only counted.
     */
    bool more = zmq_msg_more(&frames[0]);
    while (more) {
        zmq_msg_t spare;
        zmq_msg_t *frame = kept < ZAP_FRAMES_KEPT ? &frames[kept] : &spare;
        zmq_msg_init(frame);
        if (zap_receive_frame(frame, h->socket, 0) != 0) {
            int error = errno;
            zmq_msg_close(frame);
            rc = error == ETERM ? SPOOL_ESTOPPED : SPOOL_ESYSTEM;
            break;
        }
        more = zmq_msg_more(frame);
        total++;
        if (frame == &spare)
            zmq_msg_close(&spare);
        else
            kept++;
    }

    if (rc == 0) {
        zap_verdict verdict;
        zap_decide(h, frames, kept, total, &verdict);
        if (verdict.accepted)
            zap_count(&h->accepted);
        else
            zap_count(&h->refused[verdict.reason]);
        h->last = verdict;
        if (zap_reply(h->socket, frames, kept, &verdict) != 0)
            rc = errno == ETERM ? SPOOL_ESTOPPED : SPOOL_ESYSTEM;
    }
    for (size_t i = 0; i < kept; i++)
        zmq_msg_close(&frames[i]);
    return rc;
}

void zap_stats(const zap_handler *h, zap_counts *out) {
    if (out == NULL)
        return;
    memset(out, 0, sizeof *out);
    if (h == NULL)
        return;
    /* Each load pairs with the owner's store in zap_count: a whole value, no ordering needed. */
    out->accepted = pr_load_64_relaxed(&h->accepted);
    for (int i = 0; i < ZAP_REFUSAL_COUNT; i++)
        out->refused[i] = pr_load_64_relaxed(&h->refused[i]);
}

void zap_last_verdict(const zap_handler *h, zap_verdict *out) {
    if (out == NULL)
        return;
    if (h == NULL)
        memset(out, 0, sizeof *out);
    else
        *out = h->last;
}

void zap_close(zap_handler **handler) {
    if (handler == NULL || *handler == NULL)
        return;
    zap_handler *h = *handler;
    zmq_close(h->socket);
    spool_allocator allocator = h->allocator;
    memory_free(&allocator, h, sizeof *h);
    *handler = NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Sockets                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static int zap_set(void *socket, int option, const void *value, size_t size, const char *name,
                   char *err, size_t err_size) {
    if (zmq_setsockopt(socket, option, value, size) == 0)
        return 0;
    char what[64];
    snprintf(what, sizeof what, "cannot set %s", name);
    return zap_zmq_error(errno, what, err, err_size);
}

/* A key of a keys_pair is usable: exactly KEYS_Z85_LENGTH characters before its NUL. */
static bool zap_key_ok(const char key[KEYS_Z85_SIZE]) {
    return strnlen(key, KEYS_Z85_SIZE) == KEYS_Z85_LENGTH;
}

static int zap_check_curve(void *socket, const keys_pair *self, char *err, size_t err_size) {
    if (socket == NULL || self == NULL) {
        zap_say(err, err_size, "no socket or no key pair");
        return SPOOL_EINVAL;
    }
    if (!zmq_has("curve")) {
        zap_say(err, err_size, "this libzmq was built without CURVE: nodes cannot be secured");
        return SPOOL_ECONFIG;
    }
    return 0;
}

int curve_server(void *socket, const keys_pair *self, char *err, size_t err_size) {
    int rc = zap_check_curve(socket, self, err, err_size);
    if (rc != 0)
        return rc;
    if (!zap_key_ok(self->secret_key)) {
        zap_say(err, err_size, "the secret key is not %d Z85 characters", KEYS_Z85_LENGTH);
        return SPOOL_EINVAL;
    }
    int one = 1;
    if ((rc = zap_set(socket, ZMQ_CURVE_SERVER, &one, sizeof one, "ZMQ_CURVE_SERVER", err,
                      err_size)) != 0 ||
        (rc = zap_set(socket, ZMQ_CURVE_SECRETKEY, self->secret_key, KEYS_Z85_SIZE,
                      "ZMQ_CURVE_SECRETKEY (is the secret key Z85?)", err, err_size)) != 0 ||
        (rc = zap_set(socket, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN), "ZMQ_ZAP_DOMAIN", err,
                      err_size)) != 0)
        return rc;
    /* Fail closed: without a ZAP handler, refuse every client rather than accept any key. */
    rc = zap_set(socket, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one, "ZMQ_ZAP_ENFORCE_DOMAIN", err,
                 err_size);
    if (rc == SPOOL_EINVAL) {
        zap_say(err, err_size,
                "this libzmq does not know ZMQ_ZAP_ENFORCE_DOMAIN: a CURVE server without it "
                "would accept any key whenever its ZAP handler is missing");
        return SPOOL_ECONFIG;
    }
    return rc;
}

int curve_client(void *socket, const keys_pair *self, const uint8_t server_public[KEYS_BINARY_SIZE],
                 char *err, size_t err_size) {
    int rc = zap_check_curve(socket, self, err, err_size);
    if (rc != 0)
        return rc;
    if (server_public == NULL) {
        zap_say(err, err_size, "no server public key");
        return SPOOL_EINVAL;
    }
    if (!zap_key_ok(self->public_key) || !zap_key_ok(self->secret_key)) {
        zap_say(err, err_size, "the key pair is not two keys of %d Z85 characters",
                KEYS_Z85_LENGTH);
        return SPOOL_EINVAL;
    }
    if ((rc = zap_set(socket, ZMQ_CURVE_SERVERKEY, server_public, KEYS_BINARY_SIZE,
                      "ZMQ_CURVE_SERVERKEY", err, err_size)) != 0 ||
        (rc = zap_set(socket, ZMQ_CURVE_PUBLICKEY, self->public_key, KEYS_Z85_SIZE,
                      "ZMQ_CURVE_PUBLICKEY (is the public key Z85?)", err, err_size)) != 0 ||
        (rc = zap_set(socket, ZMQ_CURVE_SECRETKEY, self->secret_key, KEYS_Z85_SIZE,
                      "ZMQ_CURVE_SECRETKEY (is the secret key Z85?)", err, err_size)) != 0)
        return rc;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* The peer's name                                                                                */
/* ---------------------------------------------------------------------------------------------- */

int zap_peer_name(zmq_msg_t *msg, char *out, size_t out_size) {
    if (out != NULL && out_size > 0)
        out[0] = '\0';
    if (msg == NULL || out == NULL || out_size == 0)
        return SPOOL_EINVAL;
    const char *user = zmq_msg_gets(msg, "User-Id");
    /* Only this handler sets User-Id, and only to an allowlist name; anything else means the
     * connection was not authenticated by it. */
    if (user == NULL || keys_name_check(user, NULL, 0) != 0)
        return SPOOL_ENOENT;
    size_t length = strlen(user);
    if (length >= out_size)
        return SPOOL_EINVAL;
    memcpy(out, user, length + 1);
    return 0;
}
