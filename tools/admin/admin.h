/*
 * admin.h - what the files of libspool_admin share (internal, never installed): a growing text
 * buffer, UTF-8 repair and number formatting for the exporters (text.c), the JSON helpers built on
 * jansson (text.c), a node's name and peers next to the snapshot (peers.c), and the answer to one
 * admin request (requests.c), which endpoint.c serves.
 */
#ifndef SPOOL_ADMIN_INTERNAL_H
#define SPOOL_ADMIN_INTERNAL_H

#include "spool.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* ---------------------------------------------------------------------------------------------- */
/* Text                                                                                           */
/* ---------------------------------------------------------------------------------------------- */

/*
 * A NUL-terminated string that grows with malloc. An append that cannot allocate sets `failed` and
 * every later append does nothing, so a writer appends freely and checks once at the end.
 */
typedef struct admin_text {
    char *data;
    size_t length;
    size_t capacity;
    int failed;
} admin_text;

void admin_text_append(admin_text *text, const char *bytes, size_t size);
void admin_text_puts(admin_text *text, const char *string);
void admin_text_printf(admin_text *text, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Hands the string over (*out, free() it) and returns 0, or frees it and returns SPOOL_ENOMEM. */
int admin_text_finish(admin_text *text, char **out);

/* Frees whatever the text holds and empties it. */
void admin_text_reset(admin_text *text);

/*
 * Appends `size` bytes as valid UTF-8: every byte that does not start a well-formed sequence (a
 * name cut at 63 bytes inside a character, Latin-1 junk) becomes U+FFFD. With `prometheus_label`
 * set, backslash, double quote and newline are escaped as the exposition format wants in a label
 * value.
 */
void admin_text_utf8(admin_text *text, const char *bytes, size_t size, int prometheus_label);

/*
 * Writes `value` the way the Prometheus text format and a human want it: the shortest of %.15g,
 * %.16g, %.17g that reads back to the same double, with '.' whatever the locale; "NaN", "+Inf",
 * "-Inf" for the others. `buffer` holds at least ADMIN_NUMBER_SIZE bytes.
 */
#define ADMIN_NUMBER_SIZE 40
void admin_format_double(char *buffer, double value);

/* ---------------------------------------------------------------------------------------------- */
/* JSON (jansson)                                                                                 */
/* ---------------------------------------------------------------------------------------------- */

/* A JSON string of the first strnlen(string, max) bytes, repaired to valid UTF-8. NULL: no memory.
 */
json_t *admin_json_string(const char *string, size_t max);

/* A count as a JSON integer (values past INT64_MAX, which no counter reaches, are clamped). */
json_t *admin_json_count(uint64_t count);

/* A number of seconds as a JSON real; null for NaN and infinities, which JSON cannot hold. */
json_t *admin_json_seconds(double seconds);

/*
 * Adds `value` to an object / array, taking the reference whatever happens. Returns 0, or -1 when
 * value is NULL (its constructor failed) or the container could not grow: callers OR the results
 * and check once.
 */
int admin_json_set(json_t *object, const char *key, json_t *value);
int admin_json_append(json_t *array, json_t *value);

/* Dumps `root` compactly into a malloc'd string (*out, free() it). 0 or SPOOL_ENOMEM. */
int admin_json_dump(const json_t *root, char **out);

/* ---------------------------------------------------------------------------------------------- */
/* A node's view (peers.c) and the exporters that take it (export.c)                              */
/* ---------------------------------------------------------------------------------------------- */

/* What the endpoint adds to a snapshot: this node and its peers, copied when the snapshot is. */
typedef struct admin_node {
    int is_node;                        /* 0: the runtime runs no node (then nothing below) */
    char name[SPOOL_NODE_NAME_MAX + 1]; /* spool_node_self */
    size_t peer_count;
    spool_node_peer *peers; /* spool_node_peers, sorted by name; malloc'd */
} admin_node;

/* Copies rt's node name and peers into *out (a runtime that is no node, or stops being one
 * meanwhile, gives is_node 0). 0, SPOOL_ENOMEM, or another error of spool_node_peers. Any
 * thread. */
int admin_node_take(spool_runtime *rt, admin_node *out);

/* Frees what admin_node_take copied and zeroes *node. */
void admin_node_release(admin_node *node);

/* Adds "node" ({"name": ...}, or null) and "peers" (an array, [] when no node) to `root`. 0 or -1
 * (no memory), as admin_json_set. */
int admin_node_json(json_t *root, const admin_node *node);

/* Appends the node families (HELP and TYPE always; samples for this node and each peer). */
void admin_node_prometheus(admin_text *text, const admin_node *node);

/*
 * spool_metrics_json / spool_metrics_prometheus with the node's view too (node NULL: without it,
 * exactly what those public functions write). Errors: SPOOL_EINVAL, SPOOL_ENOMEM.
 */
int admin_metrics_json(const spool_metrics *metrics, const admin_node *node, char **out);
int admin_metrics_prometheus(const spool_metrics *metrics, const admin_node *node, char **out);

/* ---------------------------------------------------------------------------------------------- */
/* Requests                                                                                       */
/* ---------------------------------------------------------------------------------------------- */

/*
 * The reply to one request of `frames` frames whose first frame is `request` (`size` bytes, not
 * NUL-terminated, may hold anything), per the protocol in spool_admin.h: a request it does not
 * understand, or cannot serve (the snapshot failed), gets a reply that starts with "error: ".
 * Returns 0 with a NUL-terminated reply in *reply (free() it), or SPOOL_ENOMEM.
 */
int admin_answer(spool_runtime *rt, const char *request, size_t size, size_t frames, char **reply);

#endif
