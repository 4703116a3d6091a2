/*
 * snapshot.c - the "metrics json" reply of an admin endpoint (with a node's peers when it is one),
 * parsed with jansson into plain structs that stats.c, top.c and plot.c read; and the arithmetic
 * of two snapshots taken an interval apart (counter deltas, the wait quantiles of just the
 * messages sampled in between).
 */
#include "cli.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

static int fail(char *error, size_t size, const char *format, ...) {
    va_list args;
    va_start(args, format);
    vsnprintf(error, size, format, args);
    va_end(args);
    return -1;
}

/* A number under `key` in `object`; `where` names the object in the error ("actors[2]"). */
static int get_number(const json_t *object, const char *key, const char *where, double *out,
                      char *error, size_t size) {
    json_t *value = json_object_get(object, key);
    if (json_is_null(value)) { /* what the endpoint sends for a figure that is not finite */
        *out = 0;
        return 0;
    }
    if (!json_is_number(value))
        return fail(error, size, "metrics JSON: %s has no number \"%s\"", where, key);
    *out = json_number_value(value);
    return 0;
}

static int get_count(const json_t *object, const char *key, const char *where, uint64_t *out,
                     char *error, size_t size) {
    json_t *value = json_object_get(object, key);
    if (json_is_integer(value) && json_integer_value(value) >= 0) {
        *out = (uint64_t)json_integer_value(value);
        return 0;
    }
    if (json_is_real(value) &&
        json_real_value(value) >= 0) { /* beyond 2^63: jansson reads a real */
        *out = (uint64_t)json_real_value(value);
        return 0;
    }
    return fail(error, size, "metrics JSON: %s has no count \"%s\"", where, key);
}

static int get_int(const json_t *object, const char *key, const char *where, int *out, char *error,
                   size_t size) {
    json_t *value = json_object_get(object, key);
    if (!json_is_integer(value))
        return fail(error, size, "metrics JSON: %s has no integer \"%s\"", where, key);
    *out = (int)json_integer_value(value);
    return 0;
}

static void get_string(const json_t *object, const char *key, char *out, size_t size) {
    json_t *value = json_object_get(object, key);
    out[0] = '\0';
    if (json_is_string(value))
        snprintf(out, size, "%s", json_string_value(value));
    else if (json_is_integer(value))
        snprintf(out, size, "%lld", (long long)json_integer_value(value));
}

static int parse_histogram(const json_t *object, const char *where, cli_histogram *out, char *error,
                           size_t size) {
    if (!json_is_object(object))
        return fail(error, size, "metrics JSON: %s is not an object", where);
    if (get_count(object, "count", where, &out->count, error, size) != 0 ||
        get_number(object, "sum_seconds", where, &out->sum_seconds, error, size) != 0 ||
        get_number(object, "p50", where, &out->p50, error, size) != 0 ||
        get_number(object, "p99", where, &out->p99, error, size) != 0)
        return -1;
    json_t *buckets = json_object_get(object, "buckets");
    if (!json_is_array(buckets))
        return fail(error, size, "metrics JSON: %s has no array \"buckets\"", where);
    out->bucket_count = json_array_size(buckets);
    if (out->bucket_count > SPOOL_HISTOGRAM_BUCKETS)
        out->bucket_count = SPOOL_HISTOGRAM_BUCKETS;
    for (size_t i = 0; i < out->bucket_count; i++) {
        json_t *bucket = json_array_get(buckets, i);
        out->buckets[i] = json_is_integer(bucket) ? (uint64_t)json_integer_value(bucket) : 0;
    }
    return 0;
}

static int parse_thread(const json_t *object, size_t index, cli_thread *out, char *error,
                        size_t size) {
    char where[32];
    snprintf(where, sizeof where, "threads[%zu]", index);
    if (!json_is_object(object))
        return fail(error, size, "metrics JSON: %s is not an object", where);
    if (get_int(object, "thread", where, &out->thread, error, size) != 0 ||
        get_int(object, "cpu", where, &out->cpu, error, size) != 0 ||
        get_number(object, "busy_seconds", where, &out->busy_seconds, error, size) != 0 ||
        get_count(object, "messages", where, &out->messages, error, size) != 0 ||
        get_count(object, "wakeups", where, &out->wakeups, error, size) != 0 ||
        get_count(object, "actors", where, &out->actors, error, size) != 0 ||
        get_count(object, "ready", where, &out->ready, error, size) != 0)
        return -1;
    return 0;
}

static int parse_actor(const json_t *object, size_t index, cli_actor *out, char *error,
                       size_t size) {
    char where[64];
    snprintf(where, sizeof where, "actors[%zu]", index);
    if (!json_is_object(object))
        return fail(error, size, "metrics JSON: %s is not an object", where);
    get_string(object, "id", out->id, sizeof out->id);
    if (out->id[0] == '\0')
        return fail(error, size, "metrics JSON: %s has no \"id\"", where);
    get_string(object, "name", out->name, sizeof out->name);
    get_string(object, "behavior", out->behavior, sizeof out->behavior);
    if (get_int(object, "thread", where, &out->thread, error, size) != 0 ||
        get_count(object, "depth", where, &out->depth, error, size) != 0 ||
        get_count(object, "high_water", where, &out->high_water, error, size) != 0 ||
        get_count(object, "enqueued", where, &out->enqueued, error, size) != 0 ||
        get_count(object, "dequeued", where, &out->dequeued, error, size) != 0 ||
        get_count(object, "rejected", where, &out->rejected, error, size) != 0 ||
        get_count(object, "dropped", where, &out->dropped, error, size) != 0 ||
        get_count(object, "handled", where, &out->handled, error, size) != 0)
        return -1;
    char inner[80];
    snprintf(inner, sizeof inner, "%s.wait", where);
    if (parse_histogram(json_object_get(object, "wait"), inner, &out->wait, error, size) != 0)
        return -1;
    snprintf(inner, sizeof inner, "%s.processing", where);
    return parse_histogram(json_object_get(object, "processing"), inner, &out->processing, error,
                           size);
}

/* {"no_receiver": N, ...} into `out`, at most `capacity` of them; returns how many. */
static size_t parse_dead_letters(const json_t *object, cli_dead_letter *out, size_t capacity) {
    size_t count = 0;
    const char *reason;
    json_t *value;
    json_object_foreach((json_t *)object, reason, value) {
        if (count == capacity)
            break;
        cli_dead_letter *d = &out[count++];
        snprintf(d->reason, sizeof d->reason, "%s", reason);
        d->count = json_is_integer(value) && json_integer_value(value) > 0
                       ? (uint64_t)json_integer_value(value)
                       : 0;
    }
    return count;
}

static int parse_peer(const json_t *object, size_t index, cli_peer *out, char *error, size_t size) {
    char where[32];
    snprintf(where, sizeof where, "peers[%zu]", index);
    if (!json_is_object(object))
        return fail(error, size, "metrics JSON: %s is not an object", where);
    get_string(object, "node", out->node, sizeof out->node);
    if (out->node[0] == '\0')
        return fail(error, size, "metrics JSON: %s has no \"node\"", where);
    get_string(object, "endpoint", out->endpoint, sizeof out->endpoint);
    get_string(object, "state", out->state, sizeof out->state);
    get_string(object, "incarnation", out->incarnation, sizeof out->incarnation);
    if (get_count(object, "messages_in", where, &out->messages_in, error, size) != 0 ||
        get_count(object, "messages_out", where, &out->messages_out, error, size) != 0 ||
        get_count(object, "bytes_in", where, &out->bytes_in, error, size) != 0 ||
        get_count(object, "bytes_out", where, &out->bytes_out, error, size) != 0 ||
        get_count(object, "queued_messages", where, &out->queued_messages, error, size) != 0 ||
        get_count(object, "queued_bytes", where, &out->queued_bytes, error, size) != 0 ||
        get_number(object, "rtt_seconds", where, &out->rtt_seconds, error, size) != 0 ||
        get_count(object, "heartbeats_missed", where, &out->heartbeats_missed, error, size) != 0 ||
        get_count(object, "ups", where, &out->ups, error, size) != 0 ||
        get_count(object, "downs", where, &out->downs, error, size) != 0)
        return -1;
    json_t *dead = json_object_get(object, "dead_letters");
    if (json_is_object(dead))
        out->dead_letter_count = parse_dead_letters(dead, out->dead_letters, CLI_PEER_DEAD_REASONS);
    return 0;
}

/* "node" and "peers": absent from an endpoint older than nodes, null / [] when no node runs. */
static int parse_node(const json_t *root, cli_snapshot *s, char *error, size_t size) {
    json_t *node = json_object_get(root, "node");
    if (json_is_object(node))
        get_string(node, "name", s->node, sizeof s->node);
    json_t *peers = json_object_get(root, "peers");
    if (!json_is_array(peers) || json_array_size(peers) == 0)
        return 0;
    s->peers = calloc(json_array_size(peers), sizeof *s->peers);
    if (s->peers == NULL)
        return fail(error, size, "out of memory");
    for (size_t i = 0; i < json_array_size(peers); i++, s->peer_count++)
        if (parse_peer(json_array_get(peers, i), i, &s->peers[i], error, size) != 0)
            return -1;
    return 0;
}

static int parse_root(const json_t *root, cli_snapshot *s, char *error, size_t size) {
    if (!json_is_object(root))
        return fail(error, size, "metrics JSON: not an object");
    if (get_number(root, "uptime_seconds", "the snapshot", &s->uptime_seconds, error, size) != 0)
        return -1;
    json_t *sample = json_object_get(root, "sample_every");
    s->sample_every = json_is_integer(sample) ? (unsigned)json_integer_value(sample) : 1;
    json_t *enabled = json_object_get(root, "enabled");
    s->enabled = enabled == NULL || json_is_true(enabled);
    json_t *bounds = json_object_get(root, "histogram_bounds");
    for (size_t i = 0; json_is_array(bounds) && i < json_array_size(bounds) &&
                       s->bound_count < SPOOL_HISTOGRAM_BUCKETS;
         i++) {
        json_t *bound = json_array_get(bounds, i);
        if (json_is_number(bound))
            s->bounds[s->bound_count++] = json_number_value(bound);
    }

    json_t *threads = json_object_get(root, "threads");
    json_t *actors = json_object_get(root, "actors");
    if (!json_is_array(threads) || !json_is_array(actors))
        return fail(error, size, "metrics JSON: no \"threads\" or \"actors\" array");
    s->threads = calloc(json_array_size(threads) + 1, sizeof *s->threads);
    s->actors = calloc(json_array_size(actors) + 1, sizeof *s->actors);
    if (s->threads == NULL || s->actors == NULL)
        return fail(error, size, "out of memory");
    for (size_t i = 0; i < json_array_size(threads); i++, s->thread_count++)
        if (parse_thread(json_array_get(threads, i), i, &s->threads[i], error, size) != 0)
            return -1;
    for (size_t i = 0; i < json_array_size(actors); i++, s->actor_count++)
        if (parse_actor(json_array_get(actors, i), i, &s->actors[i], error, size) != 0)
            return -1;

    json_t *dead = json_object_get(root, "dead_letters");
    if (json_is_object(dead)) {
        s->dead_letters = calloc(json_object_size(dead) + 1, sizeof *s->dead_letters);
        if (s->dead_letters == NULL)
            return fail(error, size, "out of memory");
        s->dead_letter_count = parse_dead_letters(dead, s->dead_letters, json_object_size(dead));
    }
    return parse_node(root, s, error, size);
}

cli_snapshot *cli_snapshot_parse(const char *json, char *error, size_t error_size) {
    json_error_t json_error;
    json_t *root = json_loads(json, 0, &json_error);
    if (root == NULL) {
        fail(error, error_size, "metrics JSON: line %d: %s", json_error.line, json_error.text);
        return NULL;
    }
    cli_snapshot *snapshot = calloc(1, sizeof *snapshot);
    if (snapshot == NULL)
        fail(error, error_size, "out of memory");
    else if (parse_root(root, snapshot, error, error_size) != 0)
        cli_snapshot_destroy(&snapshot);
    json_decref(root);
    return snapshot;
}

void cli_snapshot_destroy(cli_snapshot **snapshot) {
    if (snapshot == NULL || *snapshot == NULL)
        return;
    free((*snapshot)->threads);
    free((*snapshot)->actors);
    free((*snapshot)->dead_letters);
    free((*snapshot)->peers);
    free(*snapshot);
    *snapshot = NULL;
}

cli_snapshot *cli_snapshot_fetch(cli_client *client, char *error, size_t error_size) {
    char *reply;
    if (cli_request(client, "metrics json", &reply, error, error_size) != 0)
        return NULL;
    cli_snapshot *snapshot = cli_snapshot_parse(reply, error, error_size);
    free(reply);
    return snapshot;
}

const cli_actor *cli_snapshot_find_actor(const cli_snapshot *snapshot, const char *id) {
    for (size_t i = 0; i < snapshot->actor_count; i++)
        if (strcmp(snapshot->actors[i].id, id) == 0)
            return &snapshot->actors[i];
    return NULL;
}

const cli_peer *cli_snapshot_find_peer(const cli_snapshot *snapshot, const char *node) {
    for (size_t i = 0; i < snapshot->peer_count; i++)
        if (strcmp(snapshot->peers[i].node, node) == 0)
            return &snapshot->peers[i];
    return NULL;
}

uint64_t cli_peer_dead_letters(const cli_peer *peer) {
    uint64_t total = 0;
    for (size_t i = 0; i < peer->dead_letter_count; i++)
        total += peer->dead_letters[i].count;
    return total;
}

uint64_t cli_snapshot_messages(const cli_snapshot *snapshot) {
    uint64_t total = 0;
    for (size_t i = 0; i < snapshot->thread_count; i++)
        total += snapshot->threads[i].messages;
    return total;
}

uint64_t cli_snapshot_dead_letters(const cli_snapshot *snapshot) {
    uint64_t total = 0;
    for (size_t i = 0; i < snapshot->dead_letter_count; i++)
        total += snapshot->dead_letters[i].count;
    return total;
}

double cli_histogram_quantile(const cli_snapshot *snapshot, const cli_histogram *now,
                              const cli_histogram *before, double q) {
    uint64_t counts[SPOOL_HISTOGRAM_BUCKETS];
    uint64_t total = 0;
    for (size_t i = 0; i < now->bucket_count; i++) {
        uint64_t earlier = before != NULL && i < before->bucket_count ? before->buckets[i] : 0;
        counts[i] = cli_delta(now->buckets[i], earlier);
        total += counts[i];
    }
    if (total == 0 || snapshot->bound_count == 0)
        return -1;
    if (q < 0)
        q = 0;
    if (q > 1)
        q = 1;
    uint64_t rank = (uint64_t)ceil(q * (double)total);
    if (rank == 0)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < now->bucket_count; i++) {
        seen += counts[i];
        if (seen >= rank)
            return snapshot->bounds[i < snapshot->bound_count ? i : snapshot->bound_count - 1];
    }
    return snapshot->bounds[snapshot->bound_count - 1];
}

const char *cli_actor_label(const cli_actor *actor, char *buffer, size_t size) {
    if (actor->name[0] != '\0')
        snprintf(buffer, size, "%s", actor->name);
    else
        snprintf(buffer, size, "(%s)", actor->behavior[0] != '\0' ? actor->behavior : "?");
    return buffer;
}
