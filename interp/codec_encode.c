/*
 * codec_encode.c - a Lua value -> MessagePack bytes: walks the value, refusing what cannot be
 * copied (behaviour: functions, coroutines, userdata, tables with a metatable; cycles; values past
 * the limits) with the path where it was found. The first step of a value's way to another thread.
 */
#include "interp/codec.h"

#include "mailbox/memory.h"

#include <lauxlib.h>
#include <math.h>
#include <msgpuck.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

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
    const codec_hooks *hooks; /* NULL: ids only */
    int label_base;           /* values mode: steps[0] names "argument <label_base + i - 1>" */
    const void **tables;      /* max_depth: the tables being encoded, outermost first */
    encode_step *steps;       /* max_depth: the keys that lead to the value being encoded */
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
        codec_append(buf, size, "[%lld]", (long long)step->array);
        return;
    }
    int k = step->key_index;
    switch (lua_type(L, k)) {
    case LUA_TSTRING: {
        size_t len = 0;
        const char *s = lua_tolstring(L, k, &len); /* a string already: no conversion */
        if (is_identifier(s, len) && len <= 64) {
            codec_append(buf, size, ".%.*s", (int)len, s);
            return;
        }
        codec_append(buf, size, "[\"");
        size_t shown = len < 40 ? len : 40;
        for (size_t i = 0; i < shown; i++) {
            unsigned char c = (unsigned char)s[i];
            if (c == '"' || c == '\\')
                codec_append(buf, size, "\\%c", c);
            else if (c >= 0x20 && c < 0x7f)
                codec_append(buf, size, "%c", c);
            else
                codec_append(buf, size, "\\%u", c);
        }
        codec_append(buf, size, shown < len ? "...\"]" : "\"]");
        return;
    }
    case LUA_TNUMBER:
        if (lua_isinteger(L, k))
            codec_append(buf, size, "[%lld]", (long long)lua_tointeger(L, k));
        else
            codec_append(buf, size, "[%.17g]", (double)lua_tonumber(L, k));
        return;
    case LUA_TBOOLEAN:
        codec_append(buf, size, lua_toboolean(L, k) ? "[true]" : "[false]");
        return;
    default:
        codec_append(buf, size, "[?]");
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
        int i = 0;
        if (e->label_base > 0 && depth > 0) {
            codec_append(e->err, e->err_size, " at argument %lld",
                         (long long)(e->steps[0].array + e->label_base - 1));
            i = 1;
        } else {
            codec_append(e->err, e->err_size, " at value");
        }
        for (; i < depth; i++)
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
static int write_ext(encoder *e, int8_t type, const char *payload, uint32_t len, int depth);

/* Behaviour at `index`: the hooks may turn it into an ext value (a handle); else it is refused. */
static int encode_hooked(encoder *e, int index, int depth, const char *what) {
    int8_t type = 0;
    char payload[CODEC_HOOK_PAYLOAD_MAX];
    uint32_t len = 0;
    if (!e->hooks || !e->hooks->encode ||
        e->hooks->encode(e->hooks->user, e->L, index, &type, payload, &len) != 0)
        return encode_fail(e, SPOOL_EINVAL, depth, "cannot copy a %s", what);
    if (len > sizeof payload)
        return encode_fail(e, SPOOL_EINVAL, depth, "ext payload of %u bytes", len);
    return write_ext(e, type, payload, len, depth);
}

/* An ext value: fixext 1/2/4/8/16 when the length fits one, else ext 8 (len <= 255). */
static int write_ext(encoder *e, int8_t type, const char *payload, uint32_t len, int depth) {
    int rc = reserve(e, 3 + len, depth);
    if (rc)
        return rc;
    /* msgpuck (Debian's 1.0.3) has no ext writer: fixext 1/2/4/8/16, else ext 8. */
    char *p = cursor(e);
    switch (len) {
    case 1:
        *p++ = (char)0xd4;
        break;
    case 2:
        *p++ = (char)0xd5;
        break;
    case 4:
        *p++ = (char)0xd6;
        break;
    case 8:
        *p++ = (char)0xd7;
        break;
    case 16:
        *p++ = (char)0xd8;
        break;
    default:
        *p++ = (char)0xc7;
        *p++ = (char)len;
        break;
    }
    *p++ = (char)type;
    memcpy(p, payload, len);
    advance(e, p + len);
    return 0;
}

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
            const char *what = type == LUA_TTABLE           ? "table"
                               : type == LUA_TLIGHTUSERDATA ? "light userdata"
                                                            : lua_typename(L, type);
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
            return encode_hooked(e, index, depth, "table with a metatable");
        }
        const void *table = lua_topointer(L, index);
        for (int i = 0; i < depth; i++)
            if (e->tables[i] == table)
                return encode_fail(e, SPOOL_EINVAL, depth, "cycle");
        if ((unsigned)depth + 1 > e->limits.max_depth)
            return encode_fail(e, SPOOL_EINVAL, depth, "nested deeper than %u tables",
                               e->limits.max_depth - (e->label_base > 0 ? 1u : 0u));
        e->tables[depth] = table;
        return encode_table(e, index, depth);
    }
    case LUA_TUSERDATA: {
        spool_id id;
        if (!codec_to_id(L, index, &id) && e->hooks)
            return encode_hooked(e, index, depth, "userdata");
        if (codec_to_id(L, index, &id) && e->hooks && e->hooks->id_export) {
            /* bound for another node: the node-independent form */
            spool_remote_id remote;
            char payload[CODEC_REMOTE_ID_MAX];
            uint32_t len = 0;
            if (e->hooks->id_export(e->hooks->user, id, &remote) != 0 ||
                (len = codec_remote_id_write(&remote, payload)) == 0)
                return encode_fail(e, SPOOL_EINVAL, depth,
                                   "cannot send id 0x%016llx to another node (no node runs here?)",
                                   (unsigned long long)id);
            return write_ext(e, CODEC_EXT_REMOTE_ID, payload, len, depth);
        }
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
    case LUA_TLIGHTUSERDATA: /* a C pointer, e.g. cjson.null: meaningful only at home */
        return encode_hooked(e, index, depth, "light userdata");
    case LUA_TFUNCTION:
        return encode_hooked(e, index, depth, "function");
    case LUA_TTHREAD:
        return encode_hooked(e, index, depth, "coroutine");
    default:
        return encode_fail(e, SPOOL_EINVAL, depth, "cannot copy a %s",
                           lua_typename(L, lua_type(L, index)));
    }
}

/* Under lua_pcall: 1 = the encoder, 2.. = the values (values mode: an array of them). */
static int encode_protected(lua_State *L) {
    encoder *e = lua_touserdata(L, 1);
    e->L = L;
    int top = lua_gettop(L);
    if (e->label_base <= 0) {
        e->status = encode_value(e, 2, 0);
        return 0;
    }
    int rc = reserve(e, 5, 0);
    if (rc)
        return 0;
    advance(e, mp_encode_array(cursor(e), (uint32_t)(top - 1)));
    e->tables[0] = NULL;
    for (int i = 2; i <= top && !rc; i++) {
        e->steps[0] = (encode_step){0, i - 1};
        rc = encode_value(e, i, 1);
    }
    return 0;
}

/* The encoder of codec_encode and codec_encode_values: `count` values from `first` (values mode
 * when label_base > 0) into out, after `front` bytes left for the caller. */
static int encode_any(lua_State *L, int first, int count, const codec_limits *limits,
                      const codec_hooks *hooks, int label_base, size_t front, codec_buffer *out,
                      char *err, size_t err_size) {
    codec_limits resolved;
    if (codec_resolve_limits(limits, &resolved)) {
        codec_say(err, err_size, "max_depth above %d", CODEC_DEPTH_CEILING);
        return SPOOL_EINVAL;
    }
    /* Values mode spends one level on the array of values, which is not the user's nesting. */
    unsigned levels = resolved.max_depth + (label_base > 0 ? 1 : 0);
    /* The common depths fit on the C stack: no allocation besides the output. */
    struct {
        encoder e;
        encode_step steps[CODEC_DEFAULT_MAX_DEPTH + 1];
        const void *tables[CODEC_DEFAULT_MAX_DEPTH + 1];
    } local;
    encoder *e = &local.e;
    size_t block_size = 0;
    if (levels <= CODEC_DEFAULT_MAX_DEPTH + 1) {
        e->steps = local.steps;
        e->tables = local.tables;
    } else {
        block_size = sizeof(encoder) + levels * (sizeof(encode_step) + sizeof(const void *));
        e = memory_alloc(out->allocator, block_size);
        if (!e) {
            codec_say(err, err_size, "out of memory");
            return SPOOL_ENOMEM;
        }
        e->steps = (encode_step *)(e + 1);
        e->tables = (const void **)(e->steps + levels);
    }
    e->limits = resolved;
    e->limits.max_depth = levels;
    e->allocator = out->allocator;
    e->out = out;
    e->err = err;
    e->err_size = err_size;
    e->status = 0;
    e->hooks = hooks;
    e->label_base = label_base;
    out->size = 0;
    int rc = 0;
    if (front > 0 && (rc = reserve(e, front, 0)) == 0)
        out->size = front;
    if (rc) {
        /* reported by reserve */
    } else if (hooks && hooks->in_lua && label_base > 0) {
        /* Already protected: encode in place, no pcall. */
        e->L = L;
        first = lua_absindex(L, first);
        if (!lua_checkstack(L, 6)) {
            codec_say(err, err_size, "Lua stack exhausted");
            rc = SPOOL_ENOMEM;
        } else if ((rc = reserve(e, 5, 0)) == 0) {
            advance(e, mp_encode_array(cursor(e), (uint32_t)count));
            e->tables[0] = NULL;
            for (int i = 0; i < count && !rc; i++) {
                e->steps[0] = (encode_step){0, i + 1};
                rc = encode_value(e, first + i, 1);
            }
        }
    } else if (!lua_checkstack(L, count + 4)) {
        codec_say(err, err_size, "Lua stack exhausted");
        rc = SPOOL_ENOMEM;
    } else {
        first = lua_absindex(L, first);
        lua_pushcfunction(L, encode_protected);
        lua_pushlightuserdata(L, e);
        for (int i = 0; i < count; i++)
            lua_pushvalue(L, first + i);
        int status = lua_pcall(L, count + 1, 0, 0);
        if (status != LUA_OK) {
            if (!e->status)
                codec_say(err, err_size, "Lua error while encoding: %s",
                          lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
            lua_pop(L, 1);
            rc = e->status ? e->status : status == LUA_ERRMEM ? SPOOL_ENOMEM : SPOOL_EINVAL;
        } else {
            rc = e->status;
        }
    }
    if (block_size)
        memory_free(out->allocator, e, block_size);
    return rc;
}

int codec_encode(lua_State *L, int index, const spool_allocator *a, const codec_limits *limits,
                 codec_buffer *out, char *err, size_t err_size) {
    if (err && err_size)
        err[0] = '\0';
    if (!out)
        return SPOOL_EINVAL;
    *out = (codec_buffer){NULL, 0, 0, a ? a : &memory_default_allocator};
    if (!L || lua_type(L, index) == LUA_TNONE) {
        codec_say(err, err_size, "no value to encode");
        return SPOOL_EINVAL;
    }
    int rc = encode_any(L, index, 1, limits, NULL, 0, 0, out, err, err_size);
    if (rc)
        codec_buffer_free(out);
    return rc;
}

int codec_encode_values(lua_State *L, int first, int count, const codec_limits *limits,
                        const codec_hooks *hooks, int label_base, size_t front, codec_buffer *out,
                        char *err, size_t err_size) {
    if (err && err_size)
        err[0] = '\0';
    if (!out || !L || count < 0 || label_base < 1 || (count > 0 && first == 0))
        return SPOOL_EINVAL;
    if (!out->allocator)
        out->allocator = &memory_default_allocator;
    out->size = 0;
    return encode_any(L, first, count, limits, hooks, label_base, front, out, err, err_size);
}
