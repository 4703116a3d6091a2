/*
 * codec_decode.c - MessagePack bytes -> a Lua value: validates the whole input first (bounds,
 * depth, sizes, counts never larger than the bytes left, keys Lua can keep, no trailing bytes),
 * then builds. The last step of a value's way from another thread.
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
    const codec_hooks *hooks; /* NULL: ids only */
    int values;               /* codec_decode_values: push the elements of the outer array */
} decoder;

/* Does the ext (type, n bytes at payload, all there) belong to the hooks? */
static int hooked_ext(const decoder *d, int type, const unsigned char *payload, uint64_t n) {
    return d->hooks && d->hooks->accepts && n <= UINT32_MAX &&
           d->hooks->accepts(d->hooks->user, (int8_t)type, (const char *)payload, (uint32_t)n);
}

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
                               d->limits.max_depth - (d->values ? 1u : 0u), at);
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
        d->offset += head + 1;
        if ((rc = need(d, (size_t)n, "an ext payload")))
            return rc;
        const unsigned char *payload = d->data + d->offset;
        if (type == CODEC_EXT_REMOTE_ID) {
            uint32_t used = 0;
            if (n > CODEC_REMOTE_ID_MAX ||
                codec_remote_id_read((const char *)payload, (uint32_t)n, NULL, &used) != 0 ||
                used != n)
                return decode_fail(d, SPOOL_EINVAL,
                                   "malformed id of another node (ext 4 of %llu bytes) at offset "
                                   "%zu",
                                   (unsigned long long)n, at);
            if (!d->hooks || !d->hooks->id_import)
                return decode_fail(d, SPOOL_EINVAL,
                                   "an id of another node (ext 4) at offset %zu, with no runtime "
                                   "to import it",
                                   at);
        } else if (!hooked_ext(d, type, payload, n) && (type != CODEC_EXT_ID || n != 8)) {
            return decode_fail(d, SPOOL_EINVAL, "unknown ext type %d of %llu bytes at offset %zu",
                               type, (unsigned long long)n, at);
        }
        d->offset += (size_t)n;
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
    default: { /* ext: validated (type 1 of 8 bytes, or one the hooks accept) */
        /* msgpuck (Debian's 1.0.3) has no ext reader; the header was validated. */
        const unsigned char *u = (const unsigned char *)*p;
        size_t head = u[0] >= 0xd4 ? 1 : 1 + ((size_t)1 << (u[0] - 0xc7));
        len = u[0] >= 0xd4 ? 1u << (u[0] - 0xd4) : (uint32_t)read_be(u + 1, (int)head - 1);
        int8_t type = (int8_t)u[head];
        const char *payload = *p + head + 1;
        *p = payload + len;
        /* An id of another node: imported, then built as the ext 1 of that id would be. */
        unsigned char id_bytes[8];
        if (type == CODEC_EXT_REMOTE_ID) {
            spool_remote_id remote = {"", 0, 0};
            spool_id id = 0;
            if (codec_remote_id_read(payload, len, &remote, NULL) != 0 || !d->hooks ||
                !d->hooks->id_import || d->hooks->id_import(d->hooks->user, &remote, &id) != 0 ||
                id == 0)
                return decode_fail(d, SPOOL_EINVAL, "cannot import the id of actor %llx on node %s",
                                   (unsigned long long)remote.local, remote.node);
            for (int i = 0; i < 8; i++)
                id_bytes[i] = (unsigned char)(id >> (56 - 8 * i));
            type = CODEC_EXT_ID;
            payload = (const char *)id_bytes;
            len = 8;
        }
        /* Asked again here: only what the hooks take now, or an id of 8 bytes, is built; hooks
         * that changed their mind since validation get an error, never a read past the input. */
        if (hooked_ext(d, type, (const unsigned char *)payload, len)) {
            int before = lua_gettop(L);
            d->hooks->decode(d->hooks->user, L, type, payload, len);
            if (lua_gettop(L) != before + 1) /* a hook that broke its promise of one value */
                return decode_fail(d, SPOOL_EINVAL,
                                   "the decode hook of ext type %d pushed %d values", type,
                                   lua_gettop(L) - before);
        } else if (type == CODEC_EXT_ID && len == 8)
            codec_push_id(L, read_be((const unsigned char *)payload, 8));
        else
            return decode_fail(d, SPOOL_EINVAL, "ext type %d of %u bytes refused by the hooks",
                               type, len);
        return 0;
    }
    }
}

/* Under lua_pcall: 1 = the decoder. Returns the value, or nothing on error. */
static int decode_protected(lua_State *L) {
    decoder *d = lua_touserdata(L, 1);
    lua_settop(L, 0);
    const char *p = (const char *)d->data;
    if (!d->values)
        return build_value(d, L, &p) ? 0 : 1;
    uint32_t n = mp_decode_array(&p);
    if (!lua_checkstack(L, (int)n + 4)) {
        decode_fail(d, SPOOL_ENOMEM, "Lua stack exhausted by %u values", n);
        return 0;
    }
    for (uint32_t i = 0; i < n; i++)
        if (build_value(d, L, &p))
            return 0;
    return (int)n;
}

/* codec_decode and codec_decode_values: one value, or the elements of one array (*count). */
static int decode_any(lua_State *L, const char *data, size_t size, const codec_limits *limits,
                      const codec_hooks *hooks, int *count, char *err, size_t err_size) {
    if (err && err_size)
        err[0] = '\0';
    if (!L || (!data && size)) {
        codec_say(err, err_size, "no input");
        return SPOOL_EINVAL;
    }
    decoder d = {
        (const unsigned char *)data, size, 0, {0, 0, 0}, err, err_size, 0, hooks, count != NULL};
    if (codec_resolve_limits(limits, &d.limits)) {
        codec_say(err, err_size, "max_depth above %d", CODEC_DEPTH_CEILING);
        return SPOOL_EINVAL;
    }
    if (size > d.limits.max_total) {
        codec_say(err, err_size, "input of %zu bytes exceeds the limit of %zu", size,
                  d.limits.max_total);
        return SPOOL_EMSGSIZE;
    }
    if (count) {
        /* The outer array of values is not the sender's nesting. */
        d.limits.max_depth++;
        if (size == 0 || mp_typeof(*data) != MP_ARRAY) {
            codec_say(err, err_size, "values: the input is not an array");
            return SPOOL_EINVAL;
        }
    }
    if (validate_value(&d, 0))
        return d.status;
    if (d.offset != size) {
        codec_say(err, err_size, "trailing bytes: the value ends at offset %zu of %zu", d.offset,
                  size);
        return SPOOL_EINVAL;
    }
    if (!lua_checkstack(L, 3)) {
        codec_say(err, err_size, "Lua stack exhausted");
        return SPOOL_ENOMEM;
    }
    int top = lua_gettop(L);
    if (count && hooks && hooks->in_lua) { /* already protected: build in place, no pcall */
        const char *p = data;
        uint32_t n = mp_decode_array(&p);
        if (!lua_checkstack(L, (int)n + 4)) {
            codec_say(err, err_size, "Lua stack exhausted by %u values", n);
            return SPOOL_ENOMEM;
        }
        for (uint32_t i = 0; i < n; i++) {
            if (build_value(&d, L, &p)) {
                lua_settop(L, top);
                return d.status;
            }
        }
        *count = (int)n;
        return 0;
    }
    lua_pushcfunction(L, decode_protected);
    lua_pushlightuserdata(L, &d);
    int status = lua_pcall(L, 1, LUA_MULTRET, 0);
    if (status != LUA_OK) {
        if (!d.status)
            codec_say(err, err_size, "Lua error while decoding: %s",
                      lua_type(L, -1) == LUA_TSTRING ? lua_tostring(L, -1) : "?");
        lua_settop(L, top);
        return d.status ? d.status : status == LUA_ERRMEM ? SPOOL_ENOMEM : SPOOL_EINVAL;
    }
    if (d.status || (!count && lua_gettop(L) != top + 1)) {
        lua_settop(L, top);
        return d.status ? d.status : SPOOL_EINVAL;
    }
    if (count)
        *count = lua_gettop(L) - top;
    return 0;
}

int codec_decode(lua_State *L, const char *data, size_t size, const codec_limits *limits, char *err,
                 size_t err_size) {
    return decode_any(L, data, size, limits, NULL, NULL, err, err_size);
}

int codec_decode_values(lua_State *L, const char *data, size_t size, const codec_limits *limits,
                        const codec_hooks *hooks, int *count, char *err, size_t err_size) {
    if (!count) {
        codec_say(err, err_size, "no count");
        return SPOOL_EINVAL;
    }
    *count = 0;
    return decode_any(L, data, size, limits, hooks, count, err, err_size);
}
