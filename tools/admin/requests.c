/*
 * requests.c - what the admin endpoint answers (the protocol is in spool_admin.h): reads the
 * request, takes a snapshot and writes the reply. Knows nothing of ZeroMQ (endpoint.c carries the
 * frames). A request is untrusted bytes: it is only ever compared, never used as a format or a
 * length, and whatever it holds the runtime sees nothing but a snapshot being taken.
 */
#include "spool_admin.h"

#include "tools/admin/admin.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The longest request that could be one we understand, with room for stray spaces. */
#define REQUEST_MAX 256

static const char understood[] =
    "understood: \"metrics\", \"metrics json\", \"metrics prometheus\", \"actors\", \"placement\"";

static int reply_error(char **reply, const char *format, ...) __attribute__((format(printf, 2, 3)));

static int reply_error(char **reply, const char *format, ...) {
    char what[160];
    va_list args;
    va_start(args, format);
    vsnprintf(what, sizeof what, format, args);
    va_end(args);
    admin_text t = {0};
    admin_text_printf(&t, "error: %s; %s", what, understood);
    return admin_text_finish(&t, reply);
}

/* Quotes the request (text of at most REQUEST_MAX bytes), cut to 40 bytes and repaired to UTF-8. */
static int reply_unknown(const char *request, size_t size, char **reply) {
    admin_text t = {0};
    admin_text_puts(&t, "error: unknown request \"");
    admin_text_utf8(&t, request, size > 40 ? 40 : size, 0);
    admin_text_printf(&t, "%s\"; %s", size > 40 ? "..." : "", understood);
    return admin_text_finish(&t, reply);
}

/* ---------------------------------------------------------------------------------------------- */
/* Replies                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

typedef enum request_kind {
    REQUEST_METRICS_JSON,
    REQUEST_METRICS_PROMETHEUS,
    REQUEST_ACTORS,
    REQUEST_PLACEMENT,
} request_kind;

/* The snapshot with this node's name and peers (none when the runtime is no node). */
static int reply_metrics(spool_runtime *rt, const spool_metrics *m, request_kind kind,
                         char **reply) {
    admin_node node;
    int rc = admin_node_take(rt, &node);
    if (rc == SPOOL_ENOMEM)
        return rc;
    if (rc != 0)
        return reply_error(reply, "the node's peers: %s", spool_strerror(rc));
    rc = kind == REQUEST_METRICS_JSON ? admin_metrics_json(m, &node, reply)
                                      : admin_metrics_prometheus(m, &node, reply);
    admin_node_release(&node);
    return rc;
}

/* [{"id":"...","name":"...","behavior":"...","thread":N,"depth":N}, ...] */
static int reply_actors(const spool_metrics *m, char **reply) {
    json_t *actors = json_array();
    if (!actors)
        return SPOOL_ENOMEM;
    int failed = 0;
    for (size_t i = 0; i < m->actor_count && !failed; i++) {
        const spool_actor_metrics *a = &m->actors[i];
        json_t *actor = json_object();
        failed |= admin_json_append(actors, actor);
        if (failed)
            break;
        char id[24];
        snprintf(id, sizeof id, "%" PRIu64, (uint64_t)a->id);
        failed |= admin_json_set(actor, "id", json_string(id));
        failed |= admin_json_set(actor, "name", admin_json_string(a->name, sizeof a->name));
        failed |=
            admin_json_set(actor, "behavior", admin_json_string(a->behavior, sizeof a->behavior));
        failed |= admin_json_set(actor, "thread", json_integer(a->thread));
        failed |= admin_json_set(actor, "depth", admin_json_count(a->depth));
    }
    int rc = failed ? SPOOL_ENOMEM : admin_json_dump(actors, reply);
    json_decref(actors);
    return rc;
}

static json_t *json_rule(const spool_placement_info *rule) {
    json_t *object = json_object();
    if (!object)
        return NULL;
    int failed = admin_json_set(object, "pattern", admin_json_string(rule->pattern, SIZE_MAX));
    failed |= admin_json_set(object, "policy", admin_json_string(rule->policy, SIZE_MAX));
    failed |= admin_json_set(object, "thread", json_integer(rule->thread));
    failed |= admin_json_set(object, "near", admin_json_string(rule->near, SIZE_MAX)); /* or null */
    failed |= admin_json_set(object, "source", admin_json_string(rule->source, SIZE_MAX));
    if (failed) {
        json_decref(object);
        return NULL;
    }
    return object;
}

/* {"threads":N,"batch":N,"default":"...","cpus":[...],"rules":[{...}, ...]} */
static int reply_placement(spool_runtime *rt, const spool_metrics *m, char **reply) {
    size_t count = spool_runtime_placement(rt, NULL, 0);
    spool_placement_info *rules = NULL;
    if (count > 0) {
        rules = calloc(count, sizeof *rules);
        if (!rules)
            return SPOOL_ENOMEM;
        size_t all = spool_runtime_placement(rt, rules, count);
        if (all < count)
            count = all;
    }
    json_t *root = json_object();
    if (!root) {
        free(rules);
        return SPOOL_ENOMEM;
    }
    int failed = admin_json_set(root, "threads", json_integer(spool_runtime_threads(rt)));
    failed |= admin_json_set(root, "batch", json_integer(spool_runtime_batch(rt)));
    failed |= admin_json_set(root, "default",
                             admin_json_string(spool_runtime_default_policy(rt), SIZE_MAX));
    json_t *cpus = json_array();
    failed |= admin_json_set(root, "cpus", cpus);
    for (size_t i = 0; i < m->thread_count && !failed; i++)
        failed |= admin_json_append(cpus, json_integer(m->threads[i].cpu));
    json_t *list = json_array();
    failed |= admin_json_set(root, "rules", list);
    for (size_t i = 0; i < count && !failed; i++)
        failed |= admin_json_append(list, json_rule(&rules[i]));
    free(rules);
    int rc = failed ? SPOOL_ENOMEM : admin_json_dump(root, reply);
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Reading a request                                                                              */
/* ---------------------------------------------------------------------------------------------- */

static int is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

/* The words of a request, spaces trimmed around and between: "metrics  json\n" = metrics, json. */
static int request_is(const char *request, size_t size, const char *first, const char *second) {
    size_t i = 0;
    while (i < size && is_space(request[i]))
        i++;
    size_t length = strlen(first);
    if (size - i < length || memcmp(request + i, first, length) != 0)
        return 0;
    i += length;
    if (second) {
        if (i == size || !is_space(request[i]))
            return 0;
        while (i < size && is_space(request[i]))
            i++;
        length = strlen(second);
        if (size - i < length || memcmp(request + i, second, length) != 0)
            return 0;
        i += length;
    }
    while (i < size && is_space(request[i]))
        i++;
    return i == size;
}

static int request_is_text(const char *request, size_t size) {
    for (size_t i = 0; i < size; i++) {
        unsigned char c = (unsigned char)request[i];
        if ((c < 0x20 && !is_space((char)c)) || c == 0x7F)
            return 0;
    }
    return 1;
}

int admin_answer(spool_runtime *rt, const char *request, size_t size, size_t frames, char **reply) {
    if (frames != 1)
        return reply_error(reply, "a request is one frame, this one had %zu", frames);
    if (size == 0)
        return reply_error(reply, "empty request");
    if (size > REQUEST_MAX)
        return reply_error(reply, "request too long (%zu bytes, at most %d)", size, REQUEST_MAX);
    if (!request_is_text(request, size))
        return reply_error(reply, "request is not text");

    request_kind kind;
    if (request_is(request, size, "metrics", NULL) || request_is(request, size, "metrics", "json"))
        kind = REQUEST_METRICS_JSON;
    else if (request_is(request, size, "metrics", "prometheus"))
        kind = REQUEST_METRICS_PROMETHEUS;
    else if (request_is(request, size, "actors", NULL))
        kind = REQUEST_ACTORS;
    else if (request_is(request, size, "placement", NULL))
        kind = REQUEST_PLACEMENT;
    else
        return reply_unknown(request, size, reply);

    spool_metrics *m = NULL;
    int rc = spool_metrics_snapshot(rt, &m);
    if (rc == SPOOL_ENOMEM)
        return rc;
    if (rc != 0)
        return reply_error(reply, "snapshot failed: %s", spool_strerror(rc));
    switch (kind) {
    case REQUEST_METRICS_JSON:
    case REQUEST_METRICS_PROMETHEUS:
        rc = reply_metrics(rt, m, kind, reply);
        break;
    case REQUEST_ACTORS:
        rc = reply_actors(m, reply);
        break;
    case REQUEST_PLACEMENT:
        rc = reply_placement(rt, m, reply);
        break;
    }
    spool_metrics_destroy(&m);
    return rc;
}
