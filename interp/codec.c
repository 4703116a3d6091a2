/*
 * codec.c - Lua values <-> MessagePack bytes, the form every value takes between threads (and,
 * later, between nodes): what the encoder (codec_encode.c) and the decoder (codec_decode.c) share,
 * and actor ids as Lua values. See codec.h for the table.
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

int codec_resolve_limits(const codec_limits *in, codec_limits *out) {
    out->max_depth = in && in->max_depth ? in->max_depth : CODEC_DEFAULT_MAX_DEPTH;
    out->max_total = in && in->max_total ? in->max_total : CODEC_DEFAULT_MAX_TOTAL;
    out->max_string = in && in->max_string ? in->max_string : CODEC_DEFAULT_MAX_STRING;
    return out->max_depth <= CODEC_DEPTH_CEILING ? 0 : SPOOL_EINVAL;
}

/* printf into err, NULL-safe. */
void codec_say(char *err, size_t err_size, const char *fmt, ...) {
    if (!err || err_size == 0)
        return;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, err_size, fmt, ap);
    va_end(ap);
}

/* Appends to a NUL-terminated string in a buffer of `size` bytes, truncating. */
void codec_append(char *buf, size_t size, const char *fmt, ...) {
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

uint32_t codec_remote_id_write(const spool_remote_id *id, char *out) {
    size_t n = strnlen(id->node, sizeof id->node);
    if (!spool_node_name_valid(id->node, n) || id->incarnation == 0 || id->local >> 48 != 0)
        return 0;
    out[0] = (char)n;
    memcpy(out + 1, id->node, n);
    char *p = out + 1 + n;
    for (int i = 0; i < 8; i++)
        p[i] = (char)(id->incarnation >> (56 - 8 * i));
    for (int i = 0; i < 6; i++)
        p[8 + i] = (char)(id->local >> (40 - 8 * i));
    return (uint32_t)(1 + n + 8 + 6);
}

int codec_remote_id_read(const char *p, uint32_t len, spool_remote_id *out, uint32_t *used) {
    const unsigned char *u = (const unsigned char *)p;
    if (len < CODEC_REMOTE_ID_MIN)
        return -1;
    size_t n = u[0];
    if (n == 0 || n > SPOOL_NODE_NAME_MAX || 1 + n + 14 > len || !spool_node_name_valid(p + 1, n))
        return -1;
    uint64_t incarnation = 0, local = 0;
    for (int i = 0; i < 8; i++)
        incarnation = incarnation << 8 | u[1 + n + (size_t)i];
    for (int i = 0; i < 6; i++)
        local = local << 8 | u[9 + n + (size_t)i];
    if (incarnation == 0)
        return -1;
    if (out) {
        memcpy(out->node, p + 1, n);
        out->node[n] = '\0';
        out->incarnation = incarnation;
        out->local = local;
    }
    if (used)
        *used = (uint32_t)(1 + n + 14);
    return 0;
}

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
