/*
 * keys.h - a node's CURVE keys: generating a key pair (`spool keygen`), storing it, loading it
 * back with checks, and the allowlist of public keys that a node accepts, each for one node name.
 * The net layer hands the secret key to its sockets and asks the allowlist, in its ZAP handler,
 * which node name a connecting key may speak for.
 *
 * Files. A node NAME's keys live in a directory DIR:
 *
 *   DIR/NAME.key   the secret key: 40 characters of Z85 and a newline, mode 0600
 *   DIR/NAME.pub   the public key: 40 characters of Z85 and a newline, mode 0644
 *
 * NAME is 1 to 63 bytes of [A-Za-z0-9_.-] and begins with neither '.' nor '-' (no hidden files,
 * nothing that looks like an option). A key file holds exactly 40 Z85 characters and, optionally,
 * one "\n"; anything else (CR, spaces, a second line) is refused, so a file is either clearly
 * a key or clearly not.
 *
 * Writing (keys_generate). Each file is first written to a temporary file in DIR,
 * ".NAME.key.XXXXXX", created with O_CREAT|O_EXCL and mode 0600 (mkostemp), so the secret is never
 * readable by anyone else, not even for a moment and whatever the umask; it is given its final mode
 * with fchmod, flushed with fsync and only then put in place. Without `force` it is put in place
 * with link(2), which fails if the name exists, so an existing key is never replaced, even by a
 * racing keygen; with `force` by rename(2), which replaces atomically. The secret goes first; if
 * the public key then cannot be put in place, the new secret is removed again (never half a new
 * pair). DIR is created (mode 0700) when missing; a DIR ending in '/' is fine.
 *
 * Loading (keys_load_secret). The secret file is opened (never blocking, so a FIFO cannot hang
 * it) and checked on the open descriptor: a regular file, and no permission bit for group or
 * others (st_mode & 077); otherwise refused with the file, its mode and the command that fixes
 * it ("chmod 600 DIR/NAME.key"). Its contents must be a key as above and decode as Z85; the public
 * key derived from it (zmq_curve_public) must equal DIR/NAME.pub, which must exist. Error messages
 * never quote the contents of a secret key file.
 *
 * The allowlist (keys_allowlist_load). Every "*.pub" in a directory (by default the node's own
 * DIR, so the node's own key is in it): the file name without ".pub" is the one node name that key
 * may speak for. Other files are ignored (".key" files, the temporary files above). Refused, and
 * the whole list with them: a bad name, a file that is not a regular file or not a key, a .pub
 * writable by group or others (whoever can write it can make the node trust any key), and one key
 * under two names (a key speaks for one node). Entries are sorted by name.
 *
 * Every function returns 0 or a negative SPOOL_E* code; `err` (may be NULL) then holds one line
 * saying what went wrong, naming the file. Codes: SPOOL_EINVAL bad arguments or name, SPOOL_ENOENT
 * a missing file or directory, SPOOL_EEXIST a key that is already there, SPOOL_ECONFIG a key file
 * that is malformed, open to others or does not match, SPOOL_ESYSTEM other system errors (errno's
 * words in err), SPOOL_ENOMEM. Any thread; the functions keep no state between calls.
 */
#ifndef SPOOL_NODES_KEYS_H
#define SPOOL_NODES_KEYS_H

#include "spool.h"

#include <stddef.h>
#include <stdint.h>

#define KEYS_Z85_LENGTH 40 /* characters of a key in Z85 */
#define KEYS_Z85_SIZE 41   /* the same with its NUL: the size of a key buffer */
#define KEYS_BINARY_SIZE 32
#define KEYS_NAME_MAX 63 /* bytes of a node name, without the NUL */

/* A node's key pair, both as NUL-terminated Z85 (what ZMQ_CURVE_*KEY take with length 41). */
typedef struct keys_pair {
    char public_key[KEYS_Z85_SIZE];
    char secret_key[KEYS_Z85_SIZE];
} keys_pair;

/* One allowlist entry: the node name `public_key` may speak for. */
typedef struct keys_entry {
    char name[KEYS_NAME_MAX + 1];
    char public_key[KEYS_Z85_SIZE];
    uint8_t public_binary[KEYS_BINARY_SIZE]; /* the same key decoded, as a ZAP request carries it */
} keys_entry;

/* The allowlist: `count` entries sorted by name. Read-only once loaded; any thread may read it. */
typedef struct keys_allowlist {
    size_t count;
    keys_entry *entries;
    size_t capacity;           /* entries allocated (count and more) */
    spool_allocator allocator; /* a copy of the one the list and its entries came from */
} keys_allowlist;

/* 0 if `name` is a valid node name (see above), else SPOOL_EINVAL with the reason in err. */
int keys_name_check(const char *name, char *err, size_t err_size);

/*
 * Makes a new key pair for node `name` and writes DIR/NAME.key and DIR/NAME.pub as described
 * above. Refuses (SPOOL_EEXIST, writing nothing) when either file exists, unless `force`. `out`
 * (may be NULL) receives the pair; wipe it with keys_pair_wipe when done.
 */
int keys_generate(const char *dir, const char *name, int force, keys_pair *out, char *err,
                  size_t err_size);

/*
 * Loads node `name`'s key pair from DIR with every check described above. On error *out is
 * wiped. Wipe it with keys_pair_wipe once the sockets have their copy.
 */
int keys_load_secret(const char *dir, const char *name, keys_pair *out, char *err, size_t err_size);

/* Overwrites the pair with zeros in a way the compiler may not leave out. */
void keys_pair_wipe(keys_pair *pair);

/*
 * Loads the allowlist of directory `dir` into a new *out (destroy it with keys_allowlist_destroy).
 * A directory without any .pub gives an empty list. `allocator` NULL means malloc/free. On error
 * *out is NULL.
 */
int keys_allowlist_load(const char *dir, const spool_allocator *allocator, keys_allowlist **out,
                        char *err, size_t err_size);

/* Frees the list and sets *list to NULL; NULL or *list NULL is fine. */
void keys_allowlist_destroy(keys_allowlist **list);

/* The node name the Z85 public key may speak for, or NULL when it is not in the list. */
const char *keys_allowlist_find_key(const keys_allowlist *list, const char *z85_public);

/* The same for a key in its 32 binary bytes (as a ZAP request's credentials frame holds it). */
const char *keys_allowlist_find_binary(const keys_allowlist *list,
                                       const uint8_t public_binary[KEYS_BINARY_SIZE]);

#endif
