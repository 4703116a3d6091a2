/*
 * admin.h - what the files of libspool_admin share (internal, never installed): a growing text
 * buffer, UTF-8 repair and number formatting for the exporters (text.c), the JSON helpers built on
 * jansson (text.c), and the answer to one admin request (requests.c), which endpoint.c serves.
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
