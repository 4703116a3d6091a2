/*
 * codec.c - Lua values <-> MessagePack bytes, the form every value takes between threads (and,
 * later, between nodes). Encoding walks the Lua value (refusing what cannot be copied, with its
 * path); decoding first validates the whole input, then builds. See codec.h for the table.
 */
#define MP_SOURCE 1 /* the one translation unit that emits msgpuck's functions */
#include "interp/codec.h"

#include "mailbox/memory.h"

#include <lauxlib.h>
#include <math.h>
#include <msgpuck.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

/* The registry key (its address) under which the id metatable is also kept, for raw lookups. */
static const char id_metatable_key = 0;

/* ---------------------------------------------------------------------------------------------- */
/* Shared                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

static int resolve_limits(const codec_limits *in, codec_limits *out) {
    out->max_depth = in && in->max_depth ? in->max_depth : CODEC_DEFAULT_MAX_DEPTH;
    out->max_total = in && in->max_total ? in->max_total : CODEC_DEFAULT_MAX_TOTAL;
    out->max_string = in && in->max_string ? in->max_string : CODEC_DEFAULT_MAX_STRING;
    return out->max_depth <= CODEC_DEPTH_CEILING ? 0 : SPOOL_EINVAL;
}

/* printf into err, NULL-safe. */
static void say(char *err, size_t err_size, const char *fmt, ...) {
    if (!err || err_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* Appends to a NUL-terminated string in a buffer of `size` bytes, truncating. */
static void append(char *buf, size_t size, const char *fmt, ...) {
    if (!buf || size == 0)
        return;
    size_t used = strlen(buf);
    if (used + 1 >= size)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf + used, size - used, fmt, ap);
    va_end(ap);
}

void codec_buffer_free(codec_buffer *buffer) {
    if (!buffer)
        return;
    if (buffer->data && buffer->allocator)
        memory_free(buffer->allocator, buffer->data, buffer->capacity);
    buffer->data = NULL;
    buffer->size = 0;
    buffer->capacity = 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Ids                                                                                            */
/* ---------------------------------------------------------------------------------------------- */

static int id_eq(lua_State *L) {
    spool_id a = 0, b = 0;
    lua_pushboolean(L, codec_to_id(L, 1, &a) && codec_to_id(L, 2, &b) && a == b);
    return 1;
}

static int id_tostring(lua_State *L) {
    spool_id id = 0;
    char text[40];
    codec_to_id(L, 1, &id);
    snprintf(text, sizeof text, "spool.id: 0x%016llx", (unsigned long long)id);
    lua_pushstring(L, text);
    return 1;
}

void codec_push_id(lua_State *L, spool_id id) {
    luaL_checkstack(L, 3, "codec_push_id");
    spool_id *box = lua_newuserdatauv(L, sizeof *box, 0);
    *box = id;
    if (lua_rawgetp(L, LUA_REGISTRYINDEX, &id_metatable_key) == LUA_TNIL) {
        lua_pop(L, 1);
        if (luaL_newmetatable(L, CODEC_ID_METATABLE)) {
            lua_pushcfunction(L, id_eq);
            lua_setfield(L, -2, "__eq");
            lua_pushcfunction(L, id_tostring);
            lua_setfield(L, -2, "__tostring");
        }
        lua_pushvalue(L, -1);
        lua_rawsetp(L, LUA_REGISTRYINDEX, &id_metatable_key);
    }
    lua_setmetatable(L, -2);
}

int codec_to_id(lua_State *L, int index, spool_id *out) {
    if (lua_type(L, index) != LUA_TUSERDATA || lua_rawlen(L, index) != sizeof(spool_id) ||
        !lua_checkstack(L, 2))
        return 0;
    if (!lua_getmetatable(L, index))
        return 0;
    lua_rawgetp(L, LUA_REGISTRYINDEX, &id_metatable_key);
    int is_id = lua_rawequal(L, -1, -2);
    lua_pop(L, 2);
    if (is_id && out)
        memcpy(out, lua_touserdata(L, index), sizeof *out);
    return is_id;
}

/* ---------------------------------------------------------------------------------------------- */
/* Encoding                                                                                       */
/* ---------------------------------------------------------------------------------------------- */

/* One step of the path from the root to the value being encoded. */
typedef struct encode_step {
    int key_index;     /* stack index of the key, or 0 for an array element */
    lua_Integer array; /* the array index when key_index is 0 */
} encode_step;

/* One block from the allocator: this struct, then steps[max_depth], then tables[max_depth]. */
typedef struct encoder {
    lua_State *L;
    const spool_allocator *allocator;
    codec_limits limits;
    codec_buffer *out;
    char *err;
    size_t err_size;
    int status;
    const void **tables; /* max_depth: the tables being encoded, outermost first */
    encode_step *steps;  /* max_depth: the keys that lead to the value being encoded */
} encoder;

static int is_reserved_word(const char *s, size_t len) {
    static const char *const words[] = {"and",   "break", "do",       "else", "elseif", "end",
                                        "false", "for",   "function", "goto", "if",     "in",
                                        "local", "nil",   "not",      "or",   "repeat", "return",
                                        "then",  "true",  "until",    "while"};
    for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
        if (strlen(words[i]) == len && memcmp(words[i], s, len) == 0)
            return 1;
    return 0;
}

static int is_identifier(const char *s, size_t len) {
    if (len == 0 || (s[0] >= '0' && s[0] <= '9'))
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_'))
            return 0;
    }
    return !is_reserved_word(s, len);
}

/* Appends one path step: .name, ["any bytes"], [3], [1.5], [true]. Never raises. */
static void append_step(const encoder *e, char *buf, size_t size, const encode_step *step) {
    lua_State *L = e->L;
    if (step->key_index == 0) {
        append(buf, size, "[%lld]", (long long)step->array);
        return;
    }
    int k = step->key_index;
    switch (lua_type(L, k)) {
    case LUA_TSTRING: {
        size_t len = 0;
        const char *s = lua_tolstring(L, k, &len); /* a string already: no conversion */
        if (is_identifier(s, len) && len <= 64) {
            append(buf, size, ".%.*s", (int)len, s);
            return;
        }
        append(buf, size, "[\"");
        size_t shown = len < 40 ? len : 40;
        for (size_t i = 0; i < shown; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '"' || c == '\\')
                append(buf, size, "\\%c", c);
            else if (c >= 0x20 && c < 0x7f)
                append(buf, size, "%c", c);
            else
                append(buf, size, "\\%u", c);
        }
        append(buf, size, shown < len ? "...\"]" : "\"]");
        return;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, k))
            append(buf, size, "[%lld]", (long long)lua_tointeger(L, k));
        else
            append(buf, size, "[%.17g]", (double)lua_tonumber(L, k));
        return;
    case LUA_TBOOLEAN:
        append(buf, size, lua_toboolean(L, k) ? "[true]" : "[false]");
        return;
    default:
        append(buf, size, "[?]");
        return;
    }
}

/* Records the first error: the words, then " at value<path>" for the first `depth` steps. */
static int encode_fail(encoder *e, int status, int depth, const char *fmt, ...) {
    if (e->status)
        return e->status;
    e->status = status;
    if (e->err && e->err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->err, e->err_size, fmt, ap);
        va_end(ap);
        append(e->err, e->err_size, " at value");
        for (int i = 0; i < depth; i++)
            append_step(e, e->err, e->err_size, &e->steps[i]);
    }
    return status;
}

/* Makes room for n more bytes, within max_total. */
static int reserve(encoder *e, size_t n, int depth) {
    codec_buffer *out = e->out;
    if (n > e->limits.max_total - out->size)
        return encode_fail(e, SPOOL_EMSGSIZE, depth, "encoded value exceeds the limit of %zu bytes",
                           e->limits.max_total);
    size_t need = out->size + n;
    if (need <= out->capacity)
        return 0;
    size_t capacity = out->capacity ? out->capacity : 256;
    while (capacity < need)
        capacity = capacity > SIZE_MAX / 2 ? need : capacity * 2;
    if (capacity > e->limits.max_total)
        capacity = e->limits.max_total; /* >= need, checked above */
    char *data = memory_alloc(e->allocator, capacity);
    if (!data)
        return encode_fail(e, SPOOL_ENOMEM, depth, "out of memory (%zu bytes)", capacity);
    if (out->size)
        memcpy(data, out->data, out->size);
    if (out->data)
        memory_free(e->allocator, out->data, out->capacity);
    out->data = data;
    out->capacity = capacity;
    return 0;
}

static char *cursor(encoder *e) { return e->out->data + e->out->size; }

static void advance(encoder *e, char *end) { e->out->size = (size_t)(end - e->out->data); }

static int encode_value(encoder *e, int index, int depth);

/* A table without metatable at absolute `index`, `depth` tables already open around it. */
static int encode_table(encoder *e, int index, int depth) {
    lua_State *L = e->L;
    if (!lua_checkstack(L, 4))
        return encode_fail(e, SPOOL_ENOMEM, depth, "Lua stack exhausted");

    /* First pass: count the entries and see whether the keys are exactly 1..n: n distinct
     * integer keys, all >= 1, the largest n. */
    size_t count = 0;
    lua_Integer largest = 0;
    int sequence = 1;
    lua_pushnil(L);
    while (lua_next(L, index)) {
        count++;
        if (sequence) {
            lua_Integer k = lua_isinteger(L, -2) ? lua_tointeger(L, -2) : 0;
            if (k < 1)
                sequence = 0;
            else if (k > largest)
                largest = k;
        }
        lua_pop(L, 1);
    }
    if (count > UINT32_MAX)
        return encode_fail(e, SPOOL_EMSGSIZE, depth, "table of more than 2^32-1 entries");
    sequence = sequence && count > 0 && (lua_Unsigned)largest == (lua_Unsigned)count;

    int rc = reserve(e, 5, depth);
    if (rc)
        return rc;
    if (sequence) {
        advance(e, mp_encode_array(cursor(e), (uint32_t)count));
        for (size_t i = 1; i <= count; i++) {
            lua_rawgeti(L, index, (lua_Integer)i);
            e->steps[depth] = (encode_step){0, (lua_Integer)i};
            rc = encode_value(e, lua_gettop(L), depth + 1);
            lua_pop(L, 1);
            if (rc)
                return rc;
        }
        return 0;
    }
    advance(e, mp_encode_map(cursor(e), (uint32_t)count));
    lua_pushnil(L);
    while (lua_next(L, index)) {
        int key = lua_gettop(L) - 1;
        int type = lua_type(L, key);
        if (type != LUA_TSTRING && type != LUA_TNUMBER && type != LUA_TBOOLEAN) {
            const char *what = type == LUA_TTABLE ? "table" : lua_typename(L, type);
            rc = encode_fail(e, SPOOL_EINVAL, depth, "cannot copy a %s as a table key", what);
        } else {
            rc = encode_value(e, key, depth);
        }
        if (!rc) {
            e->steps[depth] = (encode_step){key, 0};
            rc = encode_value(e, key + 1, depth + 1);
        }
        if (rc) {
            lua_pop(L, 2);
            return rc;
        }
        lua_pop(L, 1);
    }
    return 0;
}

/* The value at absolute `index`, reached through steps[0..depth). */
static int encode_value(encoder *e, int index, int depth) {
    lua_State *L = e->L;
    int rc;
    switch (lua_type(L, index)) {
    case LUA_TNIL:
        if ((rc = reserve(e, 1, depth)))
            return rc;
        advance(e, mp_encode_nil(cursor(e)));
        return 0;
    case LUA_TBOOLEAN:
        if ((rc = reserve(e, 1, depth)))
            return rc;
        advance(e, mp_encode_bool(cursor(e), lua_toboolean(L, index)));
        return 0;
    case LUA_TNUMBER:
        if ((rc = reserve(e, 9, depth)))
            return rc;
        if (lua_isinteger(L, index)) {
            lua_Integer i = lua_tointeger(L, index);
            advance(e,
                    i < 0 ? mp_encode_int(cursor(e), i) : mp_encode_uint(cursor(e), (uint64_t)i));
        } else {
            advance(e, mp_encode_double(cursor(e), (double)lua_tonumber(L, index)));
        }
        return 0;
    case LUA_TSTRING: {
        size_t len = 0;
        const char *s = lua_tolstring(L, index, &len);
        if (len > e->limits.max_string || len > UINT32_MAX)
            return encode_fail(
                e, SPOOL_EMSGSIZE, depth, "string of %zu bytes exceeds the limit of %zu bytes", len,
                e->limits.max_string < UINT32_MAX ? e->limits.max_string : (size_t)UINT32_MAX);
        if ((rc = reserve(e, mp_sizeof_str((uint32_t)len), depth)))
            return rc;
        advance(e, mp_encode_str(cursor(e), s, (uint32_t)len));
        return 0;
    }
    case LUA_TTABLE: {
        if (lua_getmetatable(L, index)) {
            lua_pop(L, 1);
            return encode_fail(e, SPOOL_EINVAL, depth, "cannot copy a table with a metatable");
        }
        const void *table = lua_topointer(L, index);
        for (int i = 0; i < depth; i++)
            if (e->tables[i] == table)
                return encode_fail(e, SPOOL_EINVAL, depth, "cycle");
        if ((unsigned)depth + 1 > e->limits.max_depth)
            return encode_fail(e, SPOOL_EINVAL, depth, "nested deeper than %u tables",
                               e->limits.max_depth);
        e->tables[depth] = table;
        return encode_table(e, index, depth);
    }
    case LUA_TUSERDATA: {
        spool_id id;
        if (codec_to_id(L, index, &id)) {
            if ((rc = reserve(e, 10, depth)))
                return rc;
            char *p = cursor(e);
            p[0] = (char)0xd7; /* fixext 8 */
            p[1] = (char)CODEC_EXT_ID;
            for (int i = 0; i < 8; i++)
                p[2 + i] = (char)(id >> (56 - 8 * i));
            advance(e, p + 10);
            return 0;
        }
        return encode_fail(e, SPOOL_EINVAL, depth, "cannot copy a userdata");
    }
    case LUA_TLIGHTUSERDATA:
        return encode_fail(e, SPOOL_EINVAL, depth, "cannot copy a light userdata");
    case LUA_TFUNCTION:
        return encode_fail(e, SPOOL_EINVAL, depth, "cannot copy a function");
    case LUA_TTHREAD:
        return encode_fail(e, SPOOL_EINVAL, depth, "cannot copy a coroutine");
    default:
        return encode_fail(e, SPOOL_EINVAL, depth, "cannot copy a %s",
                           lua_typename(L, lua_type(L, index)));
    }
}

/* Under lua_pcall: 1 = the value, 2 = the encoder. */
static int encode_protected(lua_State *L) {
    encoder *e = lua_touserdata(L, 2);
    e->L = L;
    e->status = encode_value(e, 1, 0);
    return 0;
}

int codec_encode(lua_State *L, int index, const spool_allocator *a, const codec_limits *limits,
                 codec_buffer *out, char *err, size_t err_size) {
    if (err && err_size)
        err[0] = '\0';
    if (!out)
        return SPOOL_EINVAL;
    *out = (codec_buffer){NULL, 0, 0, a ? a : &memory_default_allocator};
    if (!L || lua_type(L, index) == LUA_TNONE) {
        say(err, err_size, "no value to encode");
        return SPOOL_EINVAL;
    }
    codec_limits resolved;
    if (resolve_limits(limits, &resolved)) {
        say(err, err_size, "max_depth above %d", CODEC_DEPTH_CEILING);
        return SPOOL_EINVAL;
    }
    size_t block_size =
        sizeof(encoder) + resolved.max_depth * (sizeof(encode_step) + sizeof(const void *));
    encoder *e = memory_alloc(out->allocator, block_size);
    if (!e) {
        say(err, err_size, "out of memory");
        return SPOOL_ENOMEM;
    }
    e->steps = (encode_step *)(e + 1);
    e->tables = (const void **)(e->steps + resolved.max_depth);
    e->limits = resolved;
    e->allocator = out->allocator;
    e->out = out;
    e->err = err;
    e->err_size = err_size;
    e->status = 0;
    int rc = 0;
    if (!lua_checkstack(L, 4)) {
        say(err, err_size, "Lua stack exhausted");
        rc = SPOOL_ENOMEM;
    } else {
        index = lua_absindex(L, index);
        lua_pushcfunction(L, encode_protected);
        lua_pushvalue(L, index);
        lua_pushlightuserdata(L, e);
        int status = lua_pcall(L, 2, 0, 0);
        if (status != LUA_OK) {
            if (!e->status)
                say(err, err_size, "Lua error while encoding: %s",
                    lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
            lua_pop(L, 1);
            rc = e->status ? e->status : status == LUA_ERRMEM ? SPOOL_ENOMEM : SPOOL_EINVAL;
        } else {
            rc = e->status;
        }
    }
    memory_free(out->allocator, e, block_size);
    if (rc)
        codec_buffer_free(out);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Decoding                                                                                       */
/* ---------------------------------------------------------------------------------------------- */

typedef struct decoder {
    const unsigned char *data;
    size_t size;
    size_t offset; /* validation: the next byte to read */
    codec_limits limits;
    char *err;
    size_t err_size;
    int status;
} decoder;

static int decode_fail(decoder *d, int status, const char *fmt, ...) {
    if (d->status)
        return d->status;
    d->status = status;
    if (d->err && d->err_size) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(d->err, d->err_size, fmt, ap);
        va_end(ap);
    }
    return status;
}

static uint64_t read_be(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = v << 8 | p[i];
    return v;
}

/* Checks that n bytes remain at the offset; `what` names what needs them. */
static int need(decoder *d, size_t n, const char *what) {
    size_t left = d->size - d->offset;
    if (n > left)
        return decode_fail(d, SPOOL_EINVAL, "truncated: %s at offset %zu needs %zu bytes, %zu left",
                           what, d->offset, n, left);
    return 0;
}

/* Reads a header of 1 + n bytes whose last n bytes are a big-endian length or count. */
static int header(decoder *d, int n, const char *what, uint64_t *value) {
    int rc = need(d, 1 + (size_t)n, what);
    if (rc)
        return rc;
    *value = read_be(d->data + d->offset + 1, n);
    return 0;
}

static int validate_value(decoder *d, unsigned depth);

/* A map key: a string, boolean, integer, or a float that Lua keeps as a float. */
static int validate_key(decoder *d) {
    size_t at = d->offset;
    if (need(d, 1, "a map key"))
        return d->status;
    unsigned char c = d->data[at];
    switch (mp_typeof((char)c)) {
    case MP_STR:
    case MP_BIN:
    case MP_BOOL:
    case MP_UINT:
    case MP_INT:
        return validate_value(d, 0);
    case MP_FLOAT:
    case MP_DOUBLE: {
        int rc = validate_value(d, 0);
        if (rc)
            return rc;
        const char *p = (const char *)d->data + at;
        double f = c == 0xca ? (double)mp_decode_float(&p) : mp_decode_double(&p);
        if (isnan(f))
            return decode_fail(d, SPOOL_EINVAL, "NaN map key at offset %zu", at);
        if (f == floor(f) && f >= -0x1p63 && f < 0x1p63)
            return decode_fail(d, SPOOL_EINVAL,
                               "float map key %.17g at offset %zu has an integer value (Lua "
                               "would make it an integer key)",
                               f, at);
        return 0;
    }
    case MP_NIL:
        return decode_fail(d, SPOOL_EINVAL, "nil map key at offset %zu", at);
    case MP_ARRAY:
    case MP_MAP:
        return decode_fail(d, SPOOL_EINVAL, "%s as a map key at offset %zu",
                           mp_typeof((char)c) == MP_MAP ? "a map" : "an array", at);
    default:
        return decode_fail(d, SPOOL_EINVAL, "ext value (0x%02x) as a map key at offset %zu", c, at);
    }
}

/* The value at d->offset, inside `depth` containers; advances d->offset past it. */
static int validate_value(decoder *d, unsigned depth) {
    size_t at = d->offset;
    int rc = need(d, 1, "a value");
    if (rc)
        return rc;
    unsigned char c = d->data[at];
    uint64_t n = 0;
    if (c <= 0x7f || c >= 0xe0 || c == 0xc0 || c == 0xc2 || c == 0xc3) {
        d->offset++; /* fixint, nil, false, true */
        return 0;
    }
    if ((c >= 0xa0 && c <= 0xbf) || (c >= 0xd9 && c <= 0xdb) || (c >= 0xc4 && c <= 0xc6)) {
        int width = c <= 0xbf ? 0 : c >= 0xd9 ? 1 << (c - 0xd9) : 1 << (c - 0xc4);
        if (width == 0)
            n = c & 0x1f;
        else if ((rc = header(d, width, "a string header", &n)))
            return rc;
        if (n > d->limits.max_string)
            return decode_fail(d, SPOOL_EMSGSIZE,
                               "string of %llu bytes at offset %zu exceeds the limit of %zu",
                               (unsigned long long)n, at, d->limits.max_string);
        d->offset += 1 + (size_t)width;
        if ((rc = need(d, (size_t)n, "a string")))
            return rc;
        d->offset += (size_t)n;
        return 0;
    }
    int container = 0; /* 1 array, 2 map */
    if (c >= 0x80 && c <= 0x9f) {
        container = c <= 0x8f ? 2 : 1;
        n = c & 0x0f;
        d->offset += 1;
    } else if (c >= 0xdc && c <= 0xdf) {
        container = c <= 0xdd ? 1 : 2;
        int width = (c & 1) ? 4 : 2;
        if ((rc = header(d, width, container == 1 ? "an array header" : "a map header", &n)))
            return rc;
        d->offset += 1 + (size_t)width;
    }
    if (container) {
        if (depth + 1 > d->limits.max_depth)
            return decode_fail(d, SPOOL_EINVAL, "nested deeper than %u at offset %zu",
                               d->limits.max_depth, at);
        size_t left = d->size - d->offset;
        /* Never believe a count larger than the bytes left: every entry takes 1 (2) bytes. */
        if (n > left / (size_t)container)
            return decode_fail(
                d, SPOOL_EINVAL, "truncated: %s of %llu entries at offset %zu, only %zu bytes left",
                container == 1 ? "an array" : "a map", (unsigned long long)n, at, left);
        for (uint64_t i = 0; i < n; i++) {
            if (container == 2 && (rc = validate_key(d)))
                return rc;
            if ((rc = validate_value(d, depth + 1)))
                return rc;
        }
        return 0;
    }
    switch (c) {
    case 0xca: /* float 32 */
    case 0xcb: /* float 64 */
    case 0xcc: /* uint 8, 16, 32 */
    case 0xcd:
    case 0xce:
    case 0xd0: /* int 8, 16, 32, 64 */
    case 0xd1:
    case 0xd2:
    case 0xd3: {
        static const unsigned char widths[] = {4, 8, 1, 2, 4, 8, 1, 2, 4, 8};
        if ((rc = need(d, 1 + (size_t)widths[c - 0xca], "a number")))
            return rc;
        d->offset += 1 + (size_t)widths[c - 0xca];
        return 0;
    }
    case 0xcf: /* uint 64 */
        if ((rc = header(d, 8, "a number", &n)))
            return rc;
        if (n > (uint64_t)INT64_MAX)
            return decode_fail(d, SPOOL_EINVAL,
                               "unsigned integer %llu at offset %zu does not fit a Lua integer",
                               (unsigned long long)n, at);
        d->offset += 9;
        return 0;
    case 0xc1:
        return decode_fail(d, SPOOL_EINVAL, "never-used byte 0xc1 at offset %zu", at);
    default: { /* ext: fixext 1..16 (0xd4..0xd8), ext 8/16/32 (0xc7..0xc9) */
        size_t head;
        if (c >= 0xd4 && c <= 0xd8) {
            n = (uint64_t)1 << (c - 0xd4);
            head = 1;
        } else {
            int width = 1 << (c - 0xc7);
            if ((rc = header(d, width, "an ext header", &n)))
                return rc;
            head = 1 + (size_t)width;
        }
        if ((rc = need(d, head + 1, "an ext header")))
            return rc;
        int type = (signed char)d->data[at + head];
        if (type != CODEC_EXT_ID || n != 8)
            return decode_fail(d, SPOOL_EINVAL, "unknown ext type %d of %llu bytes at offset %zu",
                               type, (unsigned long long)n, at);
        d->offset += head + 1;
        if ((rc = need(d, 8, "an id")))
            return rc;
        d->offset += 8;
        return 0;
    }
    }
}

/* Builds the validated value at *p onto the stack (under lua_pcall: may raise memory errors). */
static int build_value(decoder *d, lua_State *L, const char **p) {
    if (!lua_checkstack(L, 4))
        return decode_fail(d, SPOOL_ENOMEM, "Lua stack exhausted at offset %zu",
                           (size_t)((const unsigned char *)*p - d->data));
    uint32_t len;
    switch (mp_typeof(**p)) {
    case MP_NIL:
        mp_decode_nil(p);
        lua_pushnil(L);
        return 0;
    case MP_BOOL:
        lua_pushboolean(L, mp_decode_bool(p));
        return 0;
    case MP_UINT:
        lua_pushinteger(L, (lua_Integer)mp_decode_uint(p));
        return 0;
    case MP_INT:
        lua_pushinteger(L, (lua_Integer)mp_decode_int(p));
        return 0;
    case MP_FLOAT:
        lua_pushnumber(L, (lua_Number)mp_decode_float(p));
        return 0;
    case MP_DOUBLE:
        lua_pushnumber(L, (lua_Number)mp_decode_double(p));
        return 0;
    case MP_STR:
    case MP_BIN: {
        const char *s = mp_decode_strbin(p, &len);
        lua_pushlstring(L, s, len);
        return 0;
    }
    case MP_ARRAY: {
        len = mp_decode_array(p);
        lua_createtable(L, len < (1u << 24) ? (int)len : 1 << 24, 0);
        for (uint32_t i = 1; i <= len; i++) {
            int rc = build_value(d, L, p);
            if (rc)
                return rc;
            lua_rawseti(L, -2, (lua_Integer)i);
        }
        return 0;
    }
    case MP_MAP: {
        len = mp_decode_map(p);
        lua_createtable(L, 0, len < (1u << 24) ? (int)len : 1 << 24);
        for (uint32_t i = 0; i < len; i++) {
            size_t at = (size_t)((const unsigned char *)*p - d->data);
            int rc = build_value(d, L, p);
            if (rc)
                return rc;
            lua_pushvalue(L, -1);
            if (lua_rawget(L, -3) != LUA_TNIL)
                return decode_fail(d, SPOOL_EINVAL, "duplicate map key at offset %zu", at);
            lua_pop(L, 1);
            if ((rc = build_value(d, L, p)))
                return rc;
            lua_rawset(L, -3);
        }
        return 0;
    }
    default: { /* ext type 1, 8 bytes: validated */
        const unsigned char *u = (const unsigned char *)*p;
        size_t head = u[0] >= 0xd4 ? 1 : 1 + ((size_t)1 << (u[0] - 0xc7));
        codec_push_id(L, read_be(u + head + 1, 8));
        *p += head + 1 + 8;
        return 0;
    }
    }
}

/* Under lua_pcall: 1 = the decoder. Returns the value, or nothing on error. */
static int decode_protected(lua_State *L) {
    decoder *d = lua_touserdata(L, 1);
    const char *p = (const char *)d->data;
    if (build_value(d, L, &p))
        return 0;
    return 1;
}

int codec_decode(lua_State *L, const char *data, size_t size, const codec_limits *limits, char *err,
                 size_t err_size) {
    if (err && err_size)
        err[0] = '\0';
    if (!L || (!data && size)) {
        say(err, err_size, "no input");
        return SPOOL_EINVAL;
    }
    decoder d = {(const unsigned char *)data, size, 0, {0, 0, 0}, err, err_size, 0};
    if (resolve_limits(limits, &d.limits)) {
        say(err, err_size, "max_depth above %d", CODEC_DEPTH_CEILING);
        return SPOOL_EINVAL;
    }
    if (size > d.limits.max_total) {
        say(err, err_size, "input of %zu bytes exceeds the limit of %zu", size, d.limits.max_total);
        return SPOOL_EMSGSIZE;
    }
    if (validate_value(&d, 0))
        return d.status;
    if (d.offset != size) {
        say(err, err_size, "trailing bytes: the value ends at offset %zu of %zu", d.offset, size);
        return SPOOL_EINVAL;
    }
    if (!lua_checkstack(L, 3)) {
        say(err, err_size, "Lua stack exhausted");
        return SPOOL_ENOMEM;
    }
    int top = lua_gettop(L);
    lua_pushcfunction(L, decode_protected);
    lua_pushlightuserdata(L, &d);
    int status = lua_pcall(L, 1, LUA_MULTRET, 0);
    if (status != LUA_OK) {
        if (!d.status)
            say(err, err_size, "Lua error while decoding: %s",
                lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
        lua_settop(L, top);
        return d.status ? d.status : status == LUA_ERRMEM ? SPOOL_ENOMEM : SPOOL_EINVAL;
    }
    if (d.status || lua_gettop(L) != top + 1) {
        lua_settop(L, top);
        return d.status ? d.status : SPOOL_EINVAL;
    }
    return 0;
}
