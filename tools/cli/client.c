/*
 * client.c - the command line's side of the admin protocol (include/spool_admin.h): one text frame
 * out, one text frame back, on a REQ socket made for that one request. A fresh socket each time
 * because a REQ socket whose reply never came cannot send again; the timeout covers the whole
 * exchange and ZMQ_LINGER 0 lets a request nobody took die with its socket, so nothing ever hangs.
 */
#include "cli.h"

#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

struct cli_client {
    void *context;
    char *endpoint;
    int timeout_ms;
};

cli_client *cli_client_create(const char *endpoint, int timeout_ms) {
    cli_client *client = calloc(1, sizeof *client);
    if (client == NULL)
        return NULL;
    client->endpoint = strdup(endpoint);
    client->context = zmq_ctx_new();
    client->timeout_ms = timeout_ms > 0 ? timeout_ms : CLI_DEFAULT_TIMEOUT_MS;
    if (client->endpoint == NULL || client->context == NULL) {
        cli_client_destroy(&client);
        return NULL;
    }
    return client;
}

void cli_client_destroy(cli_client **client) {
    if (client == NULL || *client == NULL)
        return;
    if ((*client)->context != NULL)
        zmq_ctx_term((*client)->context); /* every socket is closed with linger 0: no wait */
    free((*client)->endpoint);
    free(*client);
    *client = NULL;
}

const char *cli_client_endpoint(const cli_client *client) { return client->endpoint; }
int cli_client_timeout(const cli_client *client) { return client->timeout_ms; }

static void say(char *error, size_t size, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(error, size, format, args);
    va_end(args);
}

/* A failed send or receive, in words: a timeout is "no answer", anything else is ZeroMQ's error. */
static void say_failure(const cli_client *client, int error_number, char *error, size_t size) {
    if (error_number == EAGAIN)
        say(error, size, "no answer from %s within %d ms", client->endpoint, client->timeout_ms);
    else if (error_number == EINTR)
        say(error, size, "interrupted while waiting for %s", client->endpoint);
    else
        say(error, size, "%s: %s", client->endpoint, zmq_strerror(error_number));
}

static int set_int(void *socket, int option, int value) {
    return zmq_setsockopt(socket, option, &value, sizeof value);
}

int cli_request(cli_client *client, const char *request, char **reply, char *error,
                size_t error_size) {
    *reply = NULL;
    double started = cli_now();
    void *socket = zmq_socket(client->context, ZMQ_REQ);
    if (socket == NULL) {
        say(error, error_size, "cannot make a ZeroMQ socket: %s", zmq_strerror(errno));
        return -1;
    }
    int rc = -1;
    if (set_int(socket, ZMQ_LINGER, 0) != 0 ||
        set_int(socket, ZMQ_SNDTIMEO, client->timeout_ms) != 0 ||
        set_int(socket, ZMQ_RCVTIMEO, client->timeout_ms) != 0) {
        say(error, error_size, "cannot set socket options: %s", zmq_strerror(errno));
        goto done;
    }
    if (zmq_connect(socket, client->endpoint) != 0) {
        say(error, error_size, "cannot connect to %s: %s", client->endpoint, zmq_strerror(errno));
        goto done;
    }
    if (zmq_send(socket, request, strlen(request), 0) < 0) {
        say_failure(client, errno, error, error_size);
        goto done;
    }
    /* What is left of the timeout: the whole exchange, not each half, stays within it. */
    int left_ms = client->timeout_ms - (int)((cli_now() - started) * 1000.0);
    set_int(socket, ZMQ_RCVTIMEO, left_ms > 1 ? left_ms : 1);
    zmq_msg_t message;
    zmq_msg_init(&message);
    if (zmq_msg_recv(&message, socket, 0) < 0) {
        say_failure(client, errno, error, error_size);
        zmq_msg_close(&message);
        goto done;
    }
    size_t size = zmq_msg_size(&message);
    char *text = malloc(size + 1);
    if (text == NULL) {
        say(error, error_size, "out of memory for a reply of %zu bytes", size);
        zmq_msg_close(&message);
        goto done;
    }
    memcpy(text, zmq_msg_data(&message), size);
    text[size] = '\0';
    zmq_msg_close(&message);
    if (strncmp(text, "error: ", 7) == 0) {
        say(error, error_size, "%s says: %s", client->endpoint, text);
        free(text);
        goto done;
    }
    *reply = text;
    rc = 0;
done:
    zmq_close(socket);
    return rc;
}
