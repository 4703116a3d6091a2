/*
 * endpoint.c - the admin endpoint: a ZeroMQ REP socket served by a thread of its own
 * ("spool-admin", never a scheduler thread), so `spool stats` and `spool top` can look at a running
 * runtime. Each request is read whole (every frame), answered by requests.c from a snapshot, and
 * gets exactly one reply, as REP requires. Stop shuts the context down, which wakes the thread at
 * once.
 */
#include "spool_admin.h"

#include "tools/admin/admin.h"

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

/* Frames longer than this are refused by ZeroMQ itself (it drops the connection before a byte of
 * it is stored), so a peer cannot make the endpoint allocate much. Every request we understand is
 * a few bytes; shorter frames that are not requests get an "error: " reply. */
#define ADMIN_MAX_FRAME (64 * 1024)

/* How long the thread waits in one poll before looking at `stopping` again, in ms. Stop does not
 * wait for it (it shuts the context down), this only bounds the wait if that ever failed. */
#define ADMIN_POLL_MS 100

struct spool_admin {
    spool_runtime *runtime;
    void *context;       /* ZeroMQ context: ours alone */
    void *socket;        /* REP; used by `thread` only once it runs */
    pthread_t thread;    /* serves the socket */
    atomic_int stopping; /* set by spool_admin_stop */
    char ipc_path[256];  /* the socket file of an ipc:// endpoint, or "" */
    dev_t ipc_device;    /* ... and which file it was, so stop removes ours and no other */
    ino_t ipc_inode;
};

static int error_from_errno(int error) { return error == ENOMEM ? SPOOL_ENOMEM : SPOOL_ESYSTEM; }

/* ---------------------------------------------------------------------------------------------- */
/* The thread                                                                                     */
/* ---------------------------------------------------------------------------------------------- */

/* Sends the reply; if ZeroMQ cannot take it (no memory to copy it), a short error instead, since a
 * REP socket must answer before it can read again. -1 when the context is shut down. */
static const char no_memory[] = "error: out of memory";

static int admin_send(spool_admin *admin, const char *reply, size_t size) {
    for (;;) {
        if (zmq_send(admin->socket, reply, size, 0) >= 0)
            return 0;
        if (errno == ETERM)
            return -1;
        if (errno != EINTR) {
            if (reply == no_memory)
                return -1;
            reply = no_memory;
            size = sizeof no_memory - 1;
        }
    }
}

/* Receives one whole request (all its frames) and answers it. -1 when the context is shut down. */
static int admin_serve_one(spool_admin *admin) {
    zmq_msg_t request, part;
    zmq_msg_init(&request);
    while (zmq_msg_recv(&request, admin->socket, ZMQ_DONTWAIT) < 0) {
        zmq_msg_close(&request);
        if (errno == EAGAIN)
            return 0; /* a poll woke us for nothing */
        if (errno != EINTR)
            return -1;
        zmq_msg_init(&request);
    }
    /* A multi-frame request is an error, but REP answers a message, not a frame: take them all. */
    size_t frames = 1;
    int more = zmq_msg_more(&request);
    while (more) {
        zmq_msg_init(&part);
        if (zmq_msg_recv(&part, admin->socket, 0) < 0) {
            zmq_msg_close(&part);
            if (errno == EINTR)
                continue;
            zmq_msg_close(&request);
            return -1;
        }
        frames++;
        more = zmq_msg_more(&part);
        zmq_msg_close(&part);
    }

    char *reply = NULL;
    int rc = admin_answer(admin->runtime, zmq_msg_data(&request), zmq_msg_size(&request), frames,
                          &reply);
    zmq_msg_close(&request);
    if (rc != 0)
        return admin_send(admin, no_memory, sizeof no_memory - 1);
    rc = admin_send(admin, reply, strlen(reply));
    free(reply);
    return rc;
}

static void *admin_thread(void *arg) {
    spool_admin *admin = arg;
    pthread_setname_np(pthread_self(), "spool-admin");
    /* Relaxed: the flag only says "look again"; the context shutdown is what actually wakes us. */
    while (!atomic_load_explicit(&admin->stopping, memory_order_relaxed)) {
        zmq_pollitem_t item = {.socket = admin->socket, .events = ZMQ_POLLIN};
        int ready = zmq_poll(&item, 1, ADMIN_POLL_MS);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            break; /* ETERM: the context is shut down */
        }
        if (ready > 0 && admin_serve_one(admin) != 0)
            break;
    }
    /* The socket belongs to this thread: close it here, so stop can terminate the context. */
    zmq_close(admin->socket);
    admin->socket = NULL;
    return NULL;
}

/* ---------------------------------------------------------------------------------------------- */
/* Start and stop                                                                                 */
/* ---------------------------------------------------------------------------------------------- */

/* libzmq leaves an ipc:// endpoint's socket file behind when the socket closes: remember which file
 * bind made (ZMQ_LAST_ENDPOINT gives the path even for a wildcard), so stop can remove it. */
static void admin_note_ipc_file(spool_admin *admin) {
    char endpoint[sizeof admin->ipc_path + 8];
    size_t size = sizeof endpoint;
    if (zmq_getsockopt(admin->socket, ZMQ_LAST_ENDPOINT, endpoint, &size) != 0)
        return;
    endpoint[sizeof endpoint - 1] = '\0';
    const char *path = endpoint + 6;
    struct stat info;
    if (strncmp(endpoint, "ipc://", 6) != 0 || path[0] == '@' /* abstract: no file */ ||
        strlen(path) >= sizeof admin->ipc_path || stat(path, &info) != 0 || !S_ISSOCK(info.st_mode))
        return;
    strcpy(admin->ipc_path, path);
    admin->ipc_device = info.st_dev;
    admin->ipc_inode = info.st_ino;
}

/* Removes the socket file if it is still the one bind made (another endpoint may have taken the
 * path since: its file is left alone). */
static void admin_remove_ipc_file(const spool_admin *admin) {
    struct stat info;
    if (admin->ipc_path[0] && stat(admin->ipc_path, &info) == 0 &&
        info.st_dev == admin->ipc_device && info.st_ino == admin->ipc_inode)
        unlink(admin->ipc_path);
}

static int admin_open_socket(spool_admin *admin, const char *endpoint) {
    admin->socket = zmq_socket(admin->context, ZMQ_REP);
    if (!admin->socket)
        return error_from_errno(errno);
    int linger = 0; /* a reply nobody reads never holds up stop */
    int64_t max_frame = ADMIN_MAX_FRAME;
    if (zmq_setsockopt(admin->socket, ZMQ_LINGER, &linger, sizeof linger) != 0 ||
        zmq_setsockopt(admin->socket, ZMQ_MAXMSGSIZE, &max_frame, sizeof max_frame) != 0)
        return error_from_errno(errno);
    if (zmq_bind(admin->socket, endpoint) != 0)
        return SPOOL_ESYSTEM; /* malformed, unknown transport, address in use, path too long */
    admin_note_ipc_file(admin);
    return 0;
}

/* Starts the thread with every signal blocked: signals are for the application's threads. */
static int admin_start_thread(spool_admin *admin) {
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int error = pthread_create(&admin->thread, NULL, admin_thread, admin);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    return error == 0 ? 0 : error_from_errno(error);
}

int spool_admin_start(spool_runtime *rt, const char *endpoint, spool_admin **out) {
    if (!rt || !endpoint || !endpoint[0] || !out)
        return SPOOL_EINVAL;
    spool_admin *admin = calloc(1, sizeof *admin);
    if (!admin)
        return SPOOL_ENOMEM;
    admin->runtime = rt;
    atomic_init(&admin->stopping, 0);
    admin->context = zmq_ctx_new();
    if (!admin->context) {
        int rc = error_from_errno(errno);
        free(admin);
        return rc;
    }
    int rc = admin_open_socket(admin, endpoint);
    if (rc == 0)
        rc = admin_start_thread(admin); /* from here on the socket is the thread's */
    if (rc != 0) {
        if (admin->socket)
            zmq_close(admin->socket);
        zmq_ctx_term(admin->context);
        admin_remove_ipc_file(admin);
        free(admin);
        return rc;
    }
    *out = admin;
    return 0;
}

void spool_admin_stop(spool_admin **admin_p) {
    if (!admin_p || !*admin_p)
        return;
    spool_admin *admin = *admin_p;
    atomic_store_explicit(&admin->stopping, 1, memory_order_relaxed);
    zmq_ctx_shutdown(admin->context); /* the thread's poll or recv returns ETERM now */
    pthread_join(admin->thread, NULL);
    zmq_ctx_term(admin->context); /* its one socket is closed (linger 0): returns at once */
    admin_remove_ipc_file(admin);
    free(admin);
    *admin_p = NULL;
}
