/*
 * text.c - the small pieces the exporters are written with: a growing string, UTF-8 repair (names
 * are bytes; JSON and Prometheus both want valid UTF-8), numbers that read back exactly whatever
 * the locale, and jansson helpers that let a builder check for out-of-memory once instead of per
 * call.
 */
#include "tools/admin/admin.h"

#include <locale.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---------------------------------------------------------------------------------------------- */
/* Text                                                                                           */
/* ---------------------------------------------------------------------------------------------- */

static int text_reserve(admin_text *text, size_t more) {
    if (text->failed)
        return -1;
    if (more > SIZE_MAX / 2 - text->length - 1) {
        text->failed = 1;
        return -1;
    }
    size_t need = text->length + more + 1; /* + NUL */
    if (need <= text->capacity)
        return 0;
    size_t capacity = text->capacity ? text->capacity : 256;
    while (capacity < need)
        capacity *= 2;
    char *data = realloc(text->data, capacity);
    if (!data) {
        text->failed = 1;
        return -1;
    }
    text->data = data;
    text->capacity = capacity;
    return 0;
}

void admin_text_append(admin_text *text, const char *bytes, size_t size) {
    if (text_reserve(text, size) != 0)
        return;
    memcpy(text->data + text->length, bytes, size);
    text->length += size;
    text->data[text->length] = '\0';
}

void admin_text_puts(admin_text *text, const char *string) {
    admin_text_append(text, string, strlen(string));
}

void admin_text_printf(admin_text *text, const char *format, ...) {
    char small[256];
    va_list args;
    va_start(args, format);
    int n = vsnprintf(small, sizeof small, format, args);
    va_end(args);
    if (n < 0) {
        text->failed = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        admin_text_append(text, small, (size_t)n);
        return;
    }
    if (text_reserve(text, (size_t)n) != 0)
        return;
    va_start(args, format);
    vsnprintf(text->data + text->length, (size_t)n + 1, format, args);
    va_end(args);
    text->length += (size_t)n;
}

void admin_text_reset(admin_text *text) {
    free(text->data);
    *text = (admin_text){0};
}

int admin_text_finish(admin_text *text, char **out) {
    if (!text->failed && !text->data)
        text_reserve(text, 0); /* an empty string is still a string */
    if (text->failed) {
        admin_text_reset(text);
        return SPOOL_ENOMEM;
    }
    text->data[text->length] = '\0';
    *out = text->data;
    *text = (admin_text){0};
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* UTF-8                                                                                          */
/* ---------------------------------------------------------------------------------------------- */

/* Length of the well-formed UTF-8 sequence at s (n bytes left, n > 0), or 0 if there is none. */
static size_t utf8_sequence(const unsigned char *s, size_t n) {
    unsigned lead = s[0];
    size_t length;
    if (lead < 0x80)
        return 1;
    else if (lead >= 0xC2 && lead <= 0xDF)
        length = 2;
    else if (lead >= 0xE0 && lead <= 0xEF)
        length = 3;
    else if (lead >= 0xF0 && lead <= 0xF4)
        length = 4;
    else
        return 0; /* a continuation byte, an overlong C0/C1 lead, or past U+10FFFF */
    if (n < length)
        return 0;
    for (size_t i = 1; i < length; i++)
        if ((s[i] & 0xC0) != 0x80)
            return 0;
    if ((lead == 0xE0 && s[1] < 0xA0) || /* overlong three bytes */
        (lead == 0xED && s[1] > 0x9F) || /* UTF-16 surrogates */
        (lead == 0xF0 && s[1] < 0x90) || /* overlong four bytes */
        (lead == 0xF4 && s[1] > 0x8F))   /* past U+10FFFF */
        return 0;
    return length;
}

static const char replacement_character[] = "\xEF\xBF\xBD"; /* U+FFFD */

void admin_text_utf8(admin_text *text, const char *bytes, size_t size, int prometheus_label) {
    const unsigned char *s = (const unsigned char *)bytes;
    size_t i = 0;
    while (i < size) {
        /* Copy the longest run that needs nothing done in one go. */
        size_t run = i;
        while (run < size) {
            unsigned char c = s[run];
            if (prometheus_label && (c == '\\' || c == '"' || c == '\n'))
                break;
            size_t length = utf8_sequence(s + run, size - run);
            if (length == 0)
                break;
            run += length;
        }
        admin_text_append(text, bytes + i, run - i);
        i = run;
        if (i == size)
            break;
        unsigned char c = s[i];
        if (prometheus_label && c == '\\')
            admin_text_append(text, "\\\\", 2);
        else if (prometheus_label && c == '"')
            admin_text_append(text, "\\\"", 2);
        else if (prometheus_label && c == '\n')
            admin_text_append(text, "\\n", 2);
        else
            admin_text_append(text, replacement_character, 3);
        i++;
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* Numbers                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

void admin_format_double(char *buffer, double value) {
    if (isnan(value)) {
        strcpy(buffer, "NaN");
        return;
    }
    if (isinf(value)) {
        strcpy(buffer, value > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (int precision = 15; precision <= 17; precision++) {
        snprintf(buffer, ADMIN_NUMBER_SIZE, "%.*g", precision, value);
        if (strtod(buffer, NULL) == value) /* same locale both ways, so this compares numbers */
            break;
    }
    /* An application may have called setlocale(): both formats want '.', not "," or U+066B. */
    const char *point = localeconv()->decimal_point;
    if (point && point[0] && strcmp(point, ".") != 0) {
        char *at = strstr(buffer, point);
        if (at) {
            size_t length = strlen(point);
            *at = '.';
            memmove(at + 1, at + length, strlen(at + length) + 1);
        }
    }
}

/* ---------------------------------------------------------------------------------------------- */
/* JSON                                                                                           */
/* ---------------------------------------------------------------------------------------------- */

json_t *admin_json_string(const char *string, size_t max) {
    if (!string)
        return json_null();
    size_t length = strnlen(string, max);
    json_t *value = json_stringn(string, length); /* NULL if not valid UTF-8 (or no memory) */
    if (value)
        return value;
    admin_text repaired = {0};
    admin_text_utf8(&repaired, string, length, 0);
    if (!repaired.failed && repaired.data)
        value = json_stringn(repaired.data, repaired.length);
    else if (!repaired.failed)
        value = json_string("");
    admin_text_reset(&repaired);
    return value;
}

json_t *admin_json_count(uint64_t count) {
    return json_integer(count > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX : (json_int_t)count);
}

json_t *admin_json_seconds(double seconds) {
    return isfinite(seconds) ? json_real(seconds) : json_null();
}

int admin_json_set(json_t *object, const char *key, json_t *value) {
    return json_object_set_new(object, key, value); /* takes value, even on failure; -1 if NULL */
}

int admin_json_append(json_t *array, json_t *value) {
    return json_array_append_new(array, value); /* takes value, even on failure; -1 if NULL */
}

static int dump_to_text(const char *buffer, size_t size, void *data) {
    admin_text *text = data;
    admin_text_append(text, buffer, size);
    return text->failed ? -1 : 0;
}

int admin_json_dump(const json_t *root, char **out) {
    /* Into our own buffer rather than json_dumps(): the caller free()s it, and jansson's allocator
     * may have been replaced by the application (json_set_alloc_funcs). */
    admin_text text = {0};
    if (json_dump_callback(root, dump_to_text, &text, JSON_COMPACT) != 0)
        text.failed = 1;
    return admin_text_finish(&text, out);
}
