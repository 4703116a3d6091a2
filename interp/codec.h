/*
 * codec.h - the one encoding for every Lua value that leaves its thread: a value from one
 * interpreter becomes MessagePack bytes (the same bytes a node will later send over ZeroMQ) and is
 * decoded in the receiver's interpreter. Data is copied; behaviour (functions, coroutines,
 * userdata, tables with a metatable) is refused with the type and the place it was found.
 *
 * What is encoded how:
 *
 *   Lua value                          MessagePack                     decoded back as
 *   ---------------------------------  ------------------------------  ---------------------------
 *   nil                                nil (0xc0)                      nil
 *   false / true                       false / true                    boolean
 *   integer (lua_isinteger)            int family, smallest form       integer (never a float)
 *   float (also 1.0, NaN, inf)         float 64 (0xcb), always         float (never an integer)
 *   string (any bytes, NUL too)        str family, bytes as they are   string, the same bytes
 *   table, keys exactly 1..n (n >= 1)  array of n                      table with keys 1..n
 *   any other table without metatable  map (the empty table: map of 0) table with the same keys
 *   spool.id userdata (codec_push_id)  ext type 1, 8 bytes, big end.   spool.id userdata
 *   the same, for another node         ext type 4 (see below)          spool.id userdata
 *
 * Strings are always written as MessagePack str, whatever their bytes: Lua does not tell text from
 * bytes, so there is no right place to draw the line. The decoder also takes bin as a string.
 * Integers: a MessagePack uint above 2^63 - 1 does not fit a Lua integer and is refused. float 32
 * is accepted on input (as a Lua float). Map keys may be strings, booleans, integers and floats; a
 * key that is a table, an id or anything else is refused (its identity could not survive the copy).
 * Lua itself turns a float key with an integer value (t[1.0]) into an integer key, so the encoder
 * never writes one and the decoder refuses one, as well as nil and NaN keys and duplicate keys.
 *
 * A table referenced twice (not a cycle) is encoded twice and decoded as two distinct tables. A
 * table that contains itself, directly or deeper, is refused: "cycle at value.a.b".
 *
 * Limits (codec_limits; NULL or a zero field means the default):
 *   max_depth   64 nested tables/arrays/maps (the outermost table is depth 1); at most
 *               CODEC_DEPTH_CEILING, because both walks recurse on the C stack
 *   max_total   64 MiB of encoded bytes (encode: the output; decode: the input)
 *   max_string  64 MiB for one string
 * Exceeding one is SPOOL_EMSGSIZE (depth: SPOOL_EINVAL) with the path (encode) or the byte offset
 * (decode) in err. max_total bounds the bytes, not the Lua memory a decode builds: one byte (0x80)
 * is an empty table (~56 bytes in Lua), so a 64 MiB input may become a few GiB. The interpreter
 * should cap its own memory with its lua_Alloc; a decode that runs out is SPOOL_ENOMEM, cleanly.
 *
 * Why msgpuck: Debian's libmsgpuck is header-only, never allocates (memory goes through the
 * runtime's spool_allocator, see mailbox/memory.h) and is well kept; msgpack-c's unpacker trusts
 * the counts in its input and allocates for them before it has seen the bytes. The decoder here
 * never believes msgpuck with unchecked input: it first walks the whole input with its own bounds
 * checks (every count against the bytes left, the depth, the ext types, the keys, trailing bytes),
 * and only then builds Lua values with msgpuck's decode functions. codec.c is the one translation
 * unit of spool that defines MP_SOURCE; no other file may.
 *
 * Lua errors: the Lua API may raise memory errors (longjmp). Both entry points run their work under
 * lua_pcall internally, so they never raise and never longjmp past the caller: every failure is a
 * return code (SPOOL_ENOMEM for a Lua memory error) and a message in err. Call them from the thread
 * that owns L (its home thread), from C or from a C function called by Lua, but not while a
 * continuation-less yield is possible across them (they do not yield).
 */
#ifndef SPOOL_CODEC_H
#define SPOOL_CODEC_H

#include "spool.h"

#include <lua.h>
#include <stddef.h>
#include <stdint.h>

#define CODEC_DEFAULT_MAX_DEPTH 64
#define CODEC_DEFAULT_MAX_TOTAL ((size_t)64 << 20)
#define CODEC_DEFAULT_MAX_STRING ((size_t)64 << 20)
#define CODEC_DEPTH_CEILING 1000

/* The MessagePack ext type of an actor id (payload: the 64-bit id, big-endian). */
#define CODEC_EXT_ID 1

/*
 * Ids across nodes: the raw 64-bit id means nothing in another process (its node field indexes
 * this process's node table), so a value bound for another node carries every id as ext type 4,
 * its node-independent form (spool_remote_id), written by the hooks' id_export:
 *
 *   offset  bytes  what
 *   0       1      n: the node name's length, 1..SPOOL_NODE_NAME_MAX
 *   1       n      the node name, [A-Za-z0-9_.-], not starting with '.' or '-'
 *   1+n     8      the node's incarnation, big-endian, never 0
 *   9+n     6      the id's local part (generation | slot, 48 bits), big-endian
 *
 * 16..78 bytes (ext 8 or fixext 16). The decoder always validates that form (a bad length, name
 * or incarnation 0 is refused like any malformed input) and, given the hooks' id_import, turns it
 * into an id of this process (spool_id_import): then it is built exactly as an ext 1 id of that
 * value would be. Without id_import (codec_decode) an ext 4 is refused.
 */
#define CODEC_EXT_REMOTE_ID 4
#define CODEC_REMOTE_ID_MIN (1 + 1 + 8 + 6)
#define CODEC_REMOTE_ID_MAX (1 + SPOOL_NODE_NAME_MAX + 8 + 6)
/* The largest payload an encode hook may write. */
#define CODEC_HOOK_PAYLOAD_MAX 96

/* Writes the ext 4 payload of `id` into out (CODEC_REMOTE_ID_MAX bytes); returns its length, or 0
 * when the name is not a node name or the incarnation is 0. */
uint32_t codec_remote_id_write(const spool_remote_id *id, char *out);
/* Reads an ext 4 payload from the first `len` bytes of p into *out; *used (may be NULL) gets its
 * length. 0, or -1 when it is malformed (lengths, name, incarnation 0). Never reads past len. */
int codec_remote_id_read(const char *p, uint32_t len, spool_remote_id *out, uint32_t *used);
/* The registry name of the metatable of id userdata. */
#define CODEC_ID_METATABLE "spool.id"

/* What one value may weigh. Zero fields mean the default. */
typedef struct codec_limits {
    unsigned max_depth; /* nested tables, 1..CODEC_DEPTH_CEILING */
    size_t max_total;   /* encoded bytes */
    size_t max_string;  /* bytes of one string */
} codec_limits;

/*
 * Encoded bytes, owned by the caller once codec_encode succeeds: `data` holds `size` bytes in a
 * block of `capacity` bytes from `allocator`. Free with codec_buffer_free.
 */
typedef struct codec_buffer {
    char *data;
    size_t size;
    size_t capacity;
    const spool_allocator *allocator;
} codec_buffer;

/* Gives the buffer's block back to its allocator and empties it. NULL-safe; idempotent. */
void codec_buffer_free(codec_buffer *buffer);

/*
 * Encodes the value at `index` of L into *out (overwritten; the old contents are not freed). The
 * Lua stack is left as it was. `a` NULL means malloc/free. On error *out is empty (nothing to free)
 * and err (if not NULL) holds e.g. "cannot copy a function at value.handlers[3].cb".
 * Home thread of L. Errors: SPOOL_EINVAL (a value that cannot be copied, a cycle, too deep, bad
 * arguments), SPOOL_EMSGSIZE (over max_total or max_string), SPOOL_ENOMEM.
 */
int codec_encode(lua_State *L, int index, const spool_allocator *a, const codec_limits *limits,
                 codec_buffer *out, char *err, size_t err_size);

/*
 * Validates `size` bytes holding exactly one encoded value, then pushes that value onto L. On error
 * nothing is pushed and err (if not NULL) says what and at which byte offset.
 * Home thread of L. Errors: SPOOL_EINVAL (malformed, truncated, trailing bytes, unknown ext type,
 * a key Lua cannot use, too deep), SPOOL_EMSGSIZE (over max_total or max_string), SPOOL_ENOMEM.
 */
int codec_decode(lua_State *L, const char *data, size_t size, const codec_limits *limits, char *err,
                 size_t err_size);

/*
 * Values that are not plain data, as one interpreter's layer (interp/) wants them: behaviour that
 * becomes a handle, actors that become proxies. All three functions run on L's home thread.
 */
typedef struct codec_hooks {
    /* Encoder: the value at absolute `index` is behaviour (a userdata that is not an id pushed by
     * codec_push_id, a function, a coroutine, a table with a metatable). Write it as an ext value
     * (*type, up to CODEC_HOOK_PAYLOAD_MAX payload bytes, *len) and return 0, or return non-zero:
     * the codec then refuses it ("cannot copy a function at ..."). May raise Lua memory errors. */
    int (*encode)(void *user, lua_State *L, int index, int8_t *type,
                  char payload[CODEC_HOOK_PAYLOAD_MAX], uint32_t *len);
    /* Decoder: does an ext of this type with these `len` payload bytes (all there) belong to the
     * hooks? (Asked while validating, before anything is built, and again before building; ext
     * type 1 of 8 bytes is an id unless the hooks claim it.) */
    int (*accepts)(void *user, int8_t type, const char *payload, uint32_t len);
    /* Decoder: pushes the value of an accepted ext. May raise Lua errors. */
    void (*decode)(void *user, lua_State *L, int8_t type, const char *payload, uint32_t len);
    void *user;
    /* Non-zero: the caller runs under Lua's own protection (a C function called by Lua, in a
     * running coroutine), so codec_encode_values / codec_decode_values work on L directly, without
     * a lua_pcall of their own: a Lua memory error then propagates as a Lua error (the codec's
     * buffers stay consistent). Refusals are still return codes. */
    int in_lua;
    /* Encoder: non-NULL when the value leaves for another node: every id (an id userdata here;
     * the hooks do the same for what they write) goes out as ext 4 in the form this gives.
     * Non-zero: the id cannot be said outside this process, and the value is refused. */
    int (*id_export)(void *user, spool_id id, spool_remote_id *out);
    /* Decoder: turns an ext 4 into an id of this process (non-zero: refused). NULL: ext 4 is
     * refused. */
    int (*id_import)(void *user, const spool_remote_id *in, spool_id *out);
} codec_hooks;

/*
 * Encodes `count` values from index `first` of L as one MessagePack array, after `front` bytes
 * that the caller fills in (a header). `out` is reused: its block (if any) is kept and grown, its
 * allocator used (NULL: malloc); on success out->size = front + the array. The Lua stack is left as
 * it was. Errors as codec_encode; the place of a refused value is "argument <label_base + i>" for
 * the i-th value (from 0), e.g. "cannot copy a function at argument 2.cb". `hooks` may be NULL.
 */
int codec_encode_values(lua_State *L, int first, int count, const codec_limits *limits,
                        const codec_hooks *hooks, int label_base, size_t front, codec_buffer *out,
                        char *err, size_t err_size);

/*
 * Validates `size` bytes holding exactly one MessagePack array and pushes its elements (*count of
 * them). On error nothing is pushed. `hooks` may be NULL. Errors as codec_decode.
 */
int codec_decode_values(lua_State *L, const char *data, size_t size, const codec_limits *limits,
                        const codec_hooks *hooks, int *count, char *err, size_t err_size);

/*
 * Pushes an actor id: a full userdata with the metatable CODEC_ID_METATABLE (created on first use,
 * with __eq and __tostring). Like lua_push*, may raise a Lua memory error. Home thread of L.
 */
void codec_push_id(lua_State *L, spool_id id);

/* If the value at `index` is an id pushed by codec_push_id, stores it in *out and returns 1; else
 * returns 0. Never raises (reads the registry with raw access only). Home thread of L. */
int codec_to_id(lua_State *L, int index, spool_id *out);

/* ---------------------------------------------------------------------------------------------- */
/* Inside the codec (codec.c), shared by codec_encode.c and codec_decode.c                        */

/* Fills `out` from `in` (NULL or zero fields: the defaults); SPOOL_EINVAL past the depth ceiling.
 */
int codec_resolve_limits(const codec_limits *in, codec_limits *out);
/* printf into err (NULL-safe). */
void codec_say(char *err, size_t err_size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Appends to the NUL-terminated string in buf (size bytes), truncating. */
void codec_append(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
