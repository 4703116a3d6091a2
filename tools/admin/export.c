/*
 * export.c - a metrics snapshot (spool_metrics_snapshot) as text for the world outside: JSON for
 * `spool stats --json` and `spool top`, and the Prometheus text exposition format 0.0.4 for a
 * scraper. Pure functions of a snapshot: they never touch a runtime.
 *
 * JSON (one line, compact; keys in this order):
 *   {"uptime_seconds": 12.5,              seconds since spool_runtime_start
 *    "sample_every": 64,                  histograms observe one message in this many
 *    "enabled": true,                     false when the runtime runs with metrics off
 *    "histogram_bounds": [1e-07, ...],    the 25 finite upper bounds of the buckets, in seconds
 *    "threads": [{"thread": 0, "cpu": -1, "busy_seconds": 1.5, "messages": N, "wakeups": N,
 *                 "actors": N, "ready": N}, ...],
 *    "actors": [{"id": "4294967297",      a string: 64-bit ids do not fit a JSON number (2^53)
 *                "name": "",              registered name, or ""
 *                "behavior": "counter", "thread": 0, "depth": N, "high_water": N, "enqueued": N,
 *                "dequeued": N, "rejected": N, "dropped": N, "handled": N,
 *                "wait": {"count": N, "sum_seconds": x, "p50": x, "p99": x,
 *                         "buckets": [26 counts]},   per bucket, NOT cumulative; the last is +Inf
 *                "processing": {same as wait}}, ...],   live actors, in slot order
 *    "dead_letters": {"no_receiver": N, "mailbox_full": N, "dropped_oldest": N,
 *                     "receiver_stopped": N, "shutdown": N, "late_reply": N, "unknown_node": N,
 *                     "node_down": N, "overload": N, "too_large": N, "stale_incarnation": N},
 *    "node": {"name": "a"} or null,       these two only from the endpoint (admin_metrics_json
 *    "peers": [{...}, ...]}               with a node view; peers.c): a snapshot has no node
 * Counts are JSON integers, seconds JSON reals written with 17 significant digits (they read back
 * exactly, so 1e-07 shows as 9.9999999999999995e-08), and a non-finite number is null. p50 and p99
 * are spool_histogram_quantile(): the upper bound of the bucket the quantile falls in (0 if empty).
 * Strings are valid UTF-8: a byte that is not (a name cut at 63 bytes inside a character) is
 * U+FFFD.
 *
 * Prometheus: every family below always has its HELP and TYPE lines, even with no actor, so a
 * reader always sees the whole list. Per actor, labels {actor="<id>",name="<registered name, or the
 * behavior's name>",thread="<home>"}: spool_mailbox_depth, spool_mailbox_high_water (gauges),
 * spool_mailbox_{enqueued,dequeued,rejected,dropped}_total (counters), spool_mailbox_wait_seconds
 * and spool_actor_processing_seconds (histograms: cumulative _bucket{le=...} up to le="+Inf", _sum,
 * _count). Per thread {thread="<n>"}: spool_thread_busy_seconds_total, spool_thread_messages_total,
 * spool_thread_wakeups_total (counters), spool_thread_actors, spool_thread_ready (gauges). Then
 * spool_dead_letters_total{reason=...} for every reason, spool_metrics_sample_every and
 * spool_uptime_seconds (gauges); from the endpoint, then, the node families of peers.c.
 * `promtool check metrics` has nothing to say about it.
 */
#include "spool_admin.h"

#include "tools/admin/admin.h"

#include <inttypes.h>
#include <stddef.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* JSON                                                                                           */
/* ---------------------------------------------------------------------------------------------- */

static json_t *json_histogram(const spool_histogram *h) {
    json_t *object = json_object();
    json_t *buckets = json_array();
    int failed = !object || !buckets;
    for (int b = 0; b < SPOOL_HISTOGRAM_BUCKETS && !failed; b++)
        failed |= admin_json_append(buckets, admin_json_count(h->buckets[b]));
    if (!object) {
        json_decref(buckets);
        return NULL;
    }
    failed |= admin_json_set(object, "count", admin_json_count(h->count));
    failed |= admin_json_set(object, "sum_seconds", admin_json_seconds(h->sum_seconds));
    failed |= admin_json_set(object, "p50", admin_json_seconds(spool_histogram_quantile(h, 0.5)));
    failed |= admin_json_set(object, "p99", admin_json_seconds(spool_histogram_quantile(h, 0.99)));
    failed |= admin_json_set(object, "buckets", buckets);
    if (failed) {
        json_decref(object);
        return NULL;
    }
    return object;
}

static json_t *json_thread(const spool_thread_metrics *t) {
    json_t *object = json_object();
    if (!object)
        return NULL;
    int failed = admin_json_set(object, "thread", json_integer(t->thread));
    failed |= admin_json_set(object, "cpu", json_integer(t->cpu));
    failed |= admin_json_set(object, "busy_seconds", admin_json_seconds(t->busy_seconds));
    failed |= admin_json_set(object, "messages", admin_json_count(t->messages));
    failed |= admin_json_set(object, "wakeups", admin_json_count(t->wakeups));
    failed |= admin_json_set(object, "actors", admin_json_count(t->actors));
    failed |= admin_json_set(object, "ready", admin_json_count(t->ready));
    if (failed) {
        json_decref(object);
        return NULL;
    }
    return object;
}

static json_t *json_actor(const spool_actor_metrics *a) {
    json_t *object = json_object();
    if (!object)
        return NULL;
    char id[24];
    snprintf(id, sizeof id, "%" PRIu64, (uint64_t)a->id);
    int failed = admin_json_set(object, "id", json_string(id));
    failed |= admin_json_set(object, "name", admin_json_string(a->name, sizeof a->name));
    failed |=
        admin_json_set(object, "behavior", admin_json_string(a->behavior, sizeof a->behavior));
    failed |= admin_json_set(object, "thread", json_integer(a->thread));
    failed |= admin_json_set(object, "depth", admin_json_count(a->depth));
    failed |= admin_json_set(object, "high_water", admin_json_count(a->high_water));
    failed |= admin_json_set(object, "enqueued", admin_json_count(a->enqueued));
    failed |= admin_json_set(object, "dequeued", admin_json_count(a->dequeued));
    failed |= admin_json_set(object, "rejected", admin_json_count(a->rejected));
    failed |= admin_json_set(object, "dropped", admin_json_count(a->dropped));
    failed |= admin_json_set(object, "handled", admin_json_count(a->handled));
    failed |= admin_json_set(object, "wait", json_histogram(&a->wait));
    failed |= admin_json_set(object, "processing", json_histogram(&a->processing));
    if (failed) {
        json_decref(object);
        return NULL;
    }
    return object;
}

static int snapshot_is_valid(const spool_metrics *m) {
    return m && (m->thread_count == 0 || m->threads) && (m->actor_count == 0 || m->actors);
}

int spool_metrics_json(const spool_metrics *metrics, char **out) {
    return admin_metrics_json(metrics, NULL, out);
}

int admin_metrics_json(const spool_metrics *metrics, const admin_node *node, char **out) {
    if (!snapshot_is_valid(metrics) || !out)
        return SPOOL_EINVAL;
    const spool_metrics *m = metrics;
    json_t *root = json_object();
    if (!root)
        return SPOOL_ENOMEM;
    int failed = admin_json_set(root, "uptime_seconds", admin_json_seconds(m->uptime_seconds));
    failed |= admin_json_set(root, "sample_every", json_integer(m->sample_every));
    failed |= admin_json_set(root, "enabled", json_boolean(m->enabled));

    json_t *bounds = json_array();
    failed |= admin_json_set(root, "histogram_bounds", bounds);
    const double *bound = spool_histogram_bounds();
    for (int b = 0; b < SPOOL_HISTOGRAM_BUCKETS - 1 && !failed; b++)
        failed |= admin_json_append(bounds, admin_json_seconds(bound[b]));

    json_t *threads = json_array();
    failed |= admin_json_set(root, "threads", threads);
    for (size_t i = 0; i < m->thread_count && !failed; i++)
        failed |= admin_json_append(threads, json_thread(&m->threads[i]));

    json_t *actors = json_array();
    failed |= admin_json_set(root, "actors", actors);
    for (size_t i = 0; i < m->actor_count && !failed; i++)
        failed |= admin_json_append(actors, json_actor(&m->actors[i]));

    json_t *dead = json_object();
    failed |= admin_json_set(root, "dead_letters", dead);
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT && !failed; r++)
        failed |= admin_json_set(dead, spool_dead_reason_name((spool_dead_reason)r),
                                 admin_json_count(m->dead_letters[r]));

    if (node && !failed)
        failed |= admin_node_json(root, node);

    int rc = failed ? SPOOL_ENOMEM : admin_json_dump(root, out);
    json_decref(root);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Prometheus                                                                                     */
/* ---------------------------------------------------------------------------------------------- */

typedef struct family {
    const char *name;
    const char *type;
    const char *help;
    size_t offset; /* of the field: uint64_t, or double when `seconds` is set, or a histogram */
    int seconds;
} family;

static const family actor_scalars[] = {
    {"spool_mailbox_depth", "gauge", "Messages waiting in the actor's mailbox now.",
     offsetof(spool_actor_metrics, depth), 0},
    {"spool_mailbox_high_water", "gauge", "Largest mailbox depth seen.",
     offsetof(spool_actor_metrics, high_water), 0},
    {"spool_mailbox_enqueued_total", "counter", "Messages accepted into the mailbox.",
     offsetof(spool_actor_metrics, enqueued), 0},
    {"spool_mailbox_dequeued_total", "counter", "Messages taken out of the mailbox.",
     offsetof(spool_actor_metrics, dequeued), 0},
    {"spool_mailbox_rejected_total", "counter", "Sends refused because the mailbox was full.",
     offsetof(spool_actor_metrics, rejected), 0},
    {"spool_mailbox_dropped_total", "counter",
     "Oldest messages dropped to make room in a full mailbox.",
     offsetof(spool_actor_metrics, dropped), 0},
};

static const family actor_histograms[] = {
    {"spool_mailbox_wait_seconds", "histogram",
     "Time from enqueue to dequeue (sampled: one message in spool_metrics_sample_every).",
     offsetof(spool_actor_metrics, wait), 0},
    {"spool_actor_processing_seconds", "histogram",
     "Handler time per message (sampled: one message in spool_metrics_sample_every).",
     offsetof(spool_actor_metrics, processing), 0},
};

static const family thread_scalars[] = {
    {"spool_thread_busy_seconds_total", "counter",
     "Time the scheduler thread spent not idle since start.",
     offsetof(spool_thread_metrics, busy_seconds), 1},
    {"spool_thread_messages_total", "counter", "Messages handled on the scheduler thread.",
     offsetof(spool_thread_metrics, messages), 0},
    {"spool_thread_wakeups_total", "counter", "Wake-ups of the scheduler thread from sleep.",
     offsetof(spool_thread_metrics, wakeups), 0},
    {"spool_thread_actors", "gauge", "Actors whose home is the scheduler thread.",
     offsetof(spool_thread_metrics, actors), 0},
    {"spool_thread_ready", "gauge", "Actors waiting on the scheduler thread's ready queue.",
     offsetof(spool_thread_metrics, ready), 0},
};

static void prom_header(admin_text *t, const family *f) {
    admin_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", f->name, f->help, f->name, f->type);
}

/* actor="...",name="...",thread="..." (no braces) */
static void prom_actor_labels(admin_text *t, const spool_actor_metrics *a) {
    const char *name = a->name[0] ? a->name : a->behavior;
    size_t size = a->name[0] ? sizeof a->name : sizeof a->behavior;
    admin_text_printf(t, "actor=\"%" PRIu64 "\",name=\"", (uint64_t)a->id);
    admin_text_utf8(t, name, strnlen(name, size), 1);
    admin_text_printf(t, "\",thread=\"%d\"", a->thread);
}

static void prom_double(admin_text *t, double value) {
    char number[ADMIN_NUMBER_SIZE];
    admin_format_double(number, value);
    admin_text_puts(t, number);
}

static void prom_histogram(admin_text *t, const family *f, const spool_actor_metrics *a,
                           const double *bound) {
    const spool_histogram *h = (const spool_histogram *)(const void *)((const char *)a + f->offset);
    /* _count is the +Inf bucket: both from the buckets, so they agree even if `count` lags. */
    uint64_t cumulative = 0;
    for (int b = 0; b < SPOOL_HISTOGRAM_BUCKETS; b++) {
        cumulative += h->buckets[b];
        admin_text_printf(t, "%s_bucket{", f->name);
        prom_actor_labels(t, a);
        admin_text_puts(t, ",le=\"");
        if (b < SPOOL_HISTOGRAM_BUCKETS - 1)
            prom_double(t, bound[b]);
        else
            admin_text_puts(t, "+Inf");
        admin_text_printf(t, "\"} %" PRIu64 "\n", cumulative);
    }
    admin_text_printf(t, "%s_sum{", f->name);
    prom_actor_labels(t, a);
    admin_text_puts(t, "} ");
    prom_double(t, h->sum_seconds);
    admin_text_printf(t, "\n%s_count{", f->name);
    prom_actor_labels(t, a);
    admin_text_printf(t, "} %" PRIu64 "\n", cumulative);
}

int spool_metrics_prometheus(const spool_metrics *metrics, char **out) {
    return admin_metrics_prometheus(metrics, NULL, out);
}

int admin_metrics_prometheus(const spool_metrics *metrics, const admin_node *node, char **out) {
    if (!snapshot_is_valid(metrics) || !out)
        return SPOOL_EINVAL;
    const spool_metrics *m = metrics;
    admin_text t = {0};

    for (size_t f = 0; f < sizeof actor_scalars / sizeof actor_scalars[0]; f++) {
        prom_header(&t, &actor_scalars[f]);
        for (size_t i = 0; i < m->actor_count; i++) {
            const spool_actor_metrics *a = &m->actors[i];
            uint64_t value;
            memcpy(&value, (const char *)a + actor_scalars[f].offset, sizeof value);
            admin_text_printf(&t, "%s{", actor_scalars[f].name);
            prom_actor_labels(&t, a);
            admin_text_printf(&t, "} %" PRIu64 "\n", value);
        }
    }
    const double *bound = spool_histogram_bounds();
    for (size_t f = 0; f < sizeof actor_histograms / sizeof actor_histograms[0]; f++) {
        prom_header(&t, &actor_histograms[f]);
        for (size_t i = 0; i < m->actor_count; i++)
            prom_histogram(&t, &actor_histograms[f], &m->actors[i], bound);
    }

    for (size_t f = 0; f < sizeof thread_scalars / sizeof thread_scalars[0]; f++) {
        prom_header(&t, &thread_scalars[f]);
        for (size_t i = 0; i < m->thread_count; i++) {
            const spool_thread_metrics *th = &m->threads[i];
            admin_text_printf(&t, "%s{thread=\"%d\"} ", thread_scalars[f].name, th->thread);
            if (thread_scalars[f].seconds) {
                double value;
                memcpy(&value, (const char *)th + thread_scalars[f].offset, sizeof value);
                prom_double(&t, value);
            } else {
                uint64_t value;
                memcpy(&value, (const char *)th + thread_scalars[f].offset, sizeof value);
                admin_text_printf(&t, "%" PRIu64, value);
            }
            admin_text_puts(&t, "\n");
        }
    }

    static const family dead = {"spool_dead_letters_total", "counter",
                                "Messages that were never handled, by reason.", 0, 0};
    prom_header(&t, &dead);
    for (int r = 0; r < SPOOL_DEAD_REASON_COUNT; r++)
        admin_text_printf(&t, "spool_dead_letters_total{reason=\"%s\"} %" PRIu64 "\n",
                          spool_dead_reason_name((spool_dead_reason)r), m->dead_letters[r]);

    static const family sample = {"spool_metrics_sample_every", "gauge",
                                  "Histograms observe one message in this many.", 0, 0};
    prom_header(&t, &sample);
    admin_text_printf(&t, "spool_metrics_sample_every %" PRIu32 "\n", m->sample_every);

    static const family uptime = {"spool_uptime_seconds", "gauge",
                                  "Seconds since the runtime started.", 0, 0};
    prom_header(&t, &uptime);
    admin_text_puts(&t, "spool_uptime_seconds ");
    prom_double(&t, m->uptime_seconds);
    admin_text_puts(&t, "\n");

    if (node)
        admin_node_prometheus(&t, node);

    return admin_text_finish(&t, out);
}
