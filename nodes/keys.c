/*
 * keys.c - a node's CURVE key files and its allowlist (the design is in keys.h): writing a new
 * pair without ever exposing the secret or replacing a key by accident, reading key files
 * strictly, and the name each allowed public key may speak for. Used by `spool keygen` and, when a
 * node starts, by the net layer before it opens a socket.
 */
#include "nodes/keys.h"

#include "mailbox/memory.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

/* The longest file worth reading: a key, its newline and one byte to notice that there is more. */
#define KEYS_FILE_READ (KEYS_Z85_LENGTH + 2)

static const char z85_alphabet[] = "0123456789abcdefghijklmnopqrstuvwxyz"
                                   "ABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#";

static void keys_say(char *err, size_t err_size, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static void keys_say(char *err, size_t err_size, const char *format, ...) {
    if (err == NULL || err_size == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(err, err_size, format, args);
    va_end(args);
}

/* A failed system call on `path`: SPOOL_ENOENT when it is not there, else SPOOL_ESYSTEM. */
static int keys_system_error(int error, const char *what, const char *path, char *err,
                             size_t err_size) {
    keys_say(err, err_size, "cannot %s %s: %s", what, path, strerror(error));
    return error == ENOENT ? SPOOL_ENOENT : SPOOL_ESYSTEM;
}

/* Overwrites `size` bytes through a volatile pointer, which the compiler may not leave out. */
static void keys_wipe(void *memory, size_t size) {
    volatile unsigned char *p = memory;
    while (size-- > 0)
        *p++ = 0;
}

void keys_pair_wipe(keys_pair *pair) {
    if (pair != NULL)
        keys_wipe(pair, sizeof *pair);
}

int keys_name_check(const char *name, char *err, size_t err_size) {
    if (name == NULL) {
        keys_say(err, err_size, "no node name given");
        return SPOOL_EINVAL;
    }
    size_t length = strnlen(name, KEYS_NAME_MAX + 1);
    if (length == 0) {
        keys_say(err, err_size, "a node name cannot be empty");
        return SPOOL_EINVAL;
    }
    if (length > KEYS_NAME_MAX) {
        keys_say(err, err_size, "node name is longer than %d bytes", KEYS_NAME_MAX);
        return SPOOL_EINVAL;
    }
    for (size_t i = 0; i < length; i++) {
        unsigned char c = (unsigned char)name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 c == '_' || c == '.' || c == '-';
        if (!ok) {
            /* The name itself is not quoted: it may hold bytes that garble a terminal. */
            keys_say(err, err_size,
                     "node name has byte 0x%02x at offset %zu: only letters, digits, '_', '.' "
                     "and '-' are allowed",
                     c, i);
            return SPOOL_EINVAL;
        }
    }
    /* Quoted only now that every byte is known to be plain. */
    if (name[0] == '.' || name[0] == '-') {
        keys_say(err, err_size, "node name '%s' begins with '%c' (no hidden files, no options)",
                 name, name[0]);
        return SPOOL_EINVAL;
    }
    return 0;
}

/* path = dir/prefix name suffix, or SPOOL_EINVAL when it does not fit. */
static int keys_path(char *path, size_t size, const char *dir, const char *prefix, const char *name,
                     const char *suffix, char *err, size_t err_size) {
    size_t dir_length = strlen(dir);
    const char *slash = dir_length > 0 && dir[dir_length - 1] == '/' ? "" : "/";
    int n = snprintf(path, size, "%s%s%s%s%s", dir, slash, prefix, name, suffix);
    if (n < 0 || (size_t)n >= size) {
        keys_say(err, err_size, "key directory path too long: %s", dir);
        return SPOOL_EINVAL;
    }
    return 0;
}

/*
 * Checks `length` bytes read from the key file `path`: exactly KEYS_Z85_LENGTH Z85 characters and
 * an optional newline, decodable. Fills key (Z85 with its NUL) and binary. Never quotes the bytes.
 */
static int keys_parse(const char *path, const char *text, size_t length, char key[KEYS_Z85_SIZE],
                      uint8_t binary[KEYS_BINARY_SIZE], char *err, size_t err_size) {
    static const char want[] = "want exactly 40 Z85 characters and an optional newline";
    if (length == KEYS_Z85_LENGTH + 1 && text[KEYS_Z85_LENGTH] == '\n')
        length = KEYS_Z85_LENGTH;
    if (length != KEYS_Z85_LENGTH) {
        keys_say(err, err_size, "%s is not a key: %s, found %s%zu bytes", path, want,
                 length >= KEYS_FILE_READ ? "at least " : "", length);
        return SPOOL_ECONFIG;
    }
    for (size_t i = 0; i < KEYS_Z85_LENGTH; i++) {
        if (text[i] == '\0' || strchr(z85_alphabet, text[i]) == NULL) {
            keys_say(err, err_size, "%s is not a key: byte %zu is not a Z85 character (%s)", path,
                     i, want);
            return SPOOL_ECONFIG;
        }
    }
    memcpy(key, text, KEYS_Z85_LENGTH);
    key[KEYS_Z85_LENGTH] = '\0';
    if (zmq_z85_decode(binary, key) == NULL) {
        keys_wipe(key, KEYS_Z85_SIZE);
        keys_say(err, err_size,
                 "%s is not a key: its Z85 does not decode (a group of five "
                 "characters is out of range)",
                 path);
        return SPOOL_ECONFIG;
    }
    return 0;
}

/*
 * Opens the key file `path` without following it into a FIFO's wait, checks that it is a regular
 * file, and reads at most KEYS_FILE_READ bytes into text. *mode receives its permission bits.
 */
static int keys_read_file(const char *path, char text[KEYS_FILE_READ], size_t *length, mode_t *mode,
                          char *err, size_t err_size) {
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
    if (fd < 0)
        return keys_system_error(errno, "open", path, err, err_size);
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int error = errno;
        close(fd);
        return keys_system_error(error, "stat", path, err, err_size);
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        keys_say(err, err_size, "%s is not a regular file", path);
        return SPOOL_ECONFIG;
    }
    *mode = st.st_mode & 07777;
    size_t got = 0;
    while (got < KEYS_FILE_READ) {
        ssize_t n = read(fd, text + got, KEYS_FILE_READ - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int error = errno;
            close(fd);
            return keys_system_error(error, "read", path, err, err_size);
        }
        if (n == 0)
            break;
        got += (size_t)n;
    }
    close(fd);
    *length = got;
    return 0;
}

/* ---------------------------------------------------------------------------------------------- */
/* Writing a pair                                                                                 */
/* ---------------------------------------------------------------------------------------------- */

/* DIR exists as a directory afterwards: made with mode 0700 when it was missing. */
static int keys_make_dir(const char *dir, char *err, size_t err_size) {
    if (mkdir(dir, 0700) == 0)
        return 0;
    int error = errno;
    struct stat st;
    if (error == EEXIST && stat(dir, &st) == 0 && S_ISDIR(st.st_mode))
        return 0;
    if (error == EEXIST) {
        keys_say(err, err_size, "%s exists and is not a directory", dir);
        return SPOOL_EINVAL;
    }
    return keys_system_error(error, "create the key directory", dir, err, err_size);
}

/*
 * Writes "key\n" to a new temporary file DIR/.NAME<suffix>.XXXXXX (mkostemp: O_CREAT|O_EXCL, mode
 * 0600), gives it `mode` and flushes it to disk. temp receives its path; on error it is removed.
 */
static int keys_write_temp(const char *dir, const char *name, const char *suffix, const char *key,
                           mode_t mode, char temp[PATH_MAX], char *err, size_t err_size) {
    char prefix_name[KEYS_NAME_MAX + 8];
    snprintf(prefix_name, sizeof prefix_name, "%s%s", name, suffix);
    int rc = keys_path(temp, PATH_MAX, dir, ".", prefix_name, ".XXXXXX", err, err_size);
    if (rc != 0)
        return rc;
    int fd = mkostemp(temp, O_CLOEXEC);
    if (fd < 0)
        return keys_system_error(errno, "create a temporary file in", dir, err, err_size);
    char line[KEYS_Z85_LENGTH + 1];
    memcpy(line, key, KEYS_Z85_LENGTH);
    line[KEYS_Z85_LENGTH] = '\n';
    const char *what = "write";
    size_t done = 0;
    int error = 0;
    while (done < sizeof line) {
        ssize_t n = write(fd, line + done, sizeof line - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            error = errno;
            break;
        }
        done += (size_t)n;
    }
    keys_wipe(line, sizeof line);
    if (error == 0 && fchmod(fd, mode) != 0) {
        error = errno;
        what = "set the mode of";
    }
    if (error == 0 && fsync(fd) != 0) {
        error = errno;
        what = "flush";
    }
    if (close(fd) != 0 && error == 0) {
        error = errno;
        what = "close";
    }
    if (error != 0) {
        unlink(temp);
        return keys_system_error(error, what, temp, err, err_size);
    }
    return 0;
}

/*
 * Puts the temporary file in place as `path`: link(2), which never replaces an existing file, or
 * with `force` rename(2), which replaces it atomically. The temporary name is gone afterwards.
 */
static int keys_place(const char *temp, const char *path, int force, char *err, size_t err_size) {
    if (force) {
        if (rename(temp, path) == 0)
            return 0;
        int error = errno;
        unlink(temp);
        return keys_system_error(error, "rename a temporary file to", path, err, err_size);
    }
    int rc = 0;
    if (link(temp, path) != 0) {
        int error = errno;
        if (error == EEXIST) {
            keys_say(err, err_size, "%s already exists: not replacing a key (--force does)", path);
            rc = SPOOL_EEXIST;
        } else {
            rc = keys_system_error(error, "link a temporary file to", path, err, err_size);
        }
    }
    unlink(temp);
    return rc;
}

/* Flushes the directory entries made in dir. Best effort: some file systems cannot. */
static void keys_sync_dir(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
}

int keys_generate(const char *dir, const char *name, int force, keys_pair *out, char *err,
                  size_t err_size) {
    if (out != NULL)
        keys_pair_wipe(out);
    if (dir == NULL || dir[0] == '\0') {
        keys_say(err, err_size, "no key directory given");
        return SPOOL_EINVAL;
    }
    int rc = keys_name_check(name, err, err_size);
    if (rc != 0)
        return rc;
    char secret_path[PATH_MAX], public_path[PATH_MAX];
    if ((rc = keys_path(secret_path, sizeof secret_path, dir, "", name, ".key", err, err_size)) ||
        (rc = keys_path(public_path, sizeof public_path, dir, "", name, ".pub", err, err_size)))
        return rc;
    if ((rc = keys_make_dir(dir, err, err_size)) != 0)
        return rc;
    if (!force) {
        /* A clear answer before any work; link() below still refuses if one appears meanwhile. */
        const char *paths[] = {secret_path, public_path};
        for (int i = 0; i < 2; i++) {
            struct stat st;
            if (lstat(paths[i], &st) == 0) {
                keys_say(err, err_size, "%s already exists: not replacing a key (--force does)",
                         paths[i]);
                return SPOOL_EEXIST;
            }
            if (errno != ENOENT)
                return keys_system_error(errno, "stat", paths[i], err, err_size);
        }
    }

    keys_pair pair;
    if (zmq_curve_keypair(pair.public_key, pair.secret_key) != 0) {
        keys_say(err, err_size, "libzmq cannot make a CURVE key pair: %s", zmq_strerror(errno));
        return SPOOL_ESYSTEM;
    }
    char secret_temp[PATH_MAX], public_temp[PATH_MAX];
    rc = keys_write_temp(dir, name, ".key", pair.secret_key, 0600, secret_temp, err, err_size);
    if (rc == 0) {
        rc = keys_write_temp(dir, name, ".pub", pair.public_key, 0644, public_temp, err, err_size);
        if (rc != 0)
            unlink(secret_temp);
    }
    if (rc == 0) {
        rc = keys_place(secret_temp, secret_path, force, err, err_size);
        if (rc != 0) {
            unlink(public_temp);
        } else if ((rc = keys_place(public_temp, public_path, force, err, err_size)) != 0) {
            /* No half pair: the secret just put in place goes again. */
            unlink(secret_path);
        }
    }
    if (rc == 0) {
        keys_sync_dir(dir);
        if (out != NULL)
            *out = pair;
    }
    keys_pair_wipe(&pair);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* Loading a pair                                                                                 */
/* ---------------------------------------------------------------------------------------------- */

int keys_load_secret(const char *dir, const char *name, keys_pair *out, char *err,
                     size_t err_size) {
    if (out == NULL || dir == NULL || dir[0] == '\0') {
        keys_say(err, err_size, "keys_load_secret: no key directory or no place for the keys");
        return SPOOL_EINVAL;
    }
    keys_pair_wipe(out);
    int rc = keys_name_check(name, err, err_size);
    if (rc != 0)
        return rc;
    char secret_path[PATH_MAX], public_path[PATH_MAX];
    if ((rc = keys_path(secret_path, sizeof secret_path, dir, "", name, ".key", err, err_size)) ||
        (rc = keys_path(public_path, sizeof public_path, dir, "", name, ".pub", err, err_size)))
        return rc;

    char text[KEYS_FILE_READ];
    size_t length = 0;
    mode_t mode = 0;
    uint8_t binary[KEYS_BINARY_SIZE];
    keys_pair pair;
    rc = keys_read_file(secret_path, text, &length, &mode, err, err_size);
    if (rc == SPOOL_ENOENT)
        keys_say(err, err_size, "no secret key %s (spool keygen %s --name %s makes one)",
                 secret_path, dir, name);
    if (rc == 0 && (mode & 077) != 0) {
        keys_say(err, err_size,
                 "%s has mode %04o: group or others may use this secret key; fix it with: "
                 "chmod 600 %s",
                 secret_path, (unsigned)mode, secret_path);
        rc = SPOOL_ECONFIG;
    }
    if (rc == 0)
        rc = keys_parse(secret_path, text, length, pair.secret_key, binary, err, err_size);
    keys_wipe(text, sizeof text);
    keys_wipe(binary, sizeof binary);
    if (rc == 0 && zmq_curve_public(pair.public_key, pair.secret_key) != 0) {
        keys_say(err, err_size, "libzmq cannot derive the public key of %s: %s", secret_path,
                 zmq_strerror(errno));
        rc = SPOOL_ESYSTEM;
    }

    char stored[KEYS_Z85_SIZE];
    if (rc == 0) {
        rc = keys_read_file(public_path, text, &length, &mode, err, err_size);
        if (rc == SPOOL_ENOENT)
            keys_say(err, err_size, "no public key %s next to the secret key %s", public_path,
                     secret_path);
    }
    if (rc == 0)
        rc = keys_parse(public_path, text, length, stored, binary, err, err_size);
    if (rc == 0 && strcmp(stored, pair.public_key) != 0) {
        keys_say(err, err_size,
                 "%s does not match the secret key %s (whose public key is %s); make the pair "
                 "again with spool keygen --force",
                 public_path, secret_path, pair.public_key);
        rc = SPOOL_ECONFIG;
    }
    if (rc == 0)
        *out = pair;
    keys_pair_wipe(&pair);
    return rc;
}

/* ---------------------------------------------------------------------------------------------- */
/* The allowlist                                                                                  */
/* ---------------------------------------------------------------------------------------------- */

static int keys_entry_compare(const void *a, const void *b) {
    return strcmp(((const keys_entry *)a)->name, ((const keys_entry *)b)->name);
}

/* Room for one more entry: the array doubles through the list's allocator. */
static int keys_allowlist_grow(keys_allowlist *list) {
    if (list->count < list->capacity)
        return 0;
    size_t bigger = list->capacity == 0 ? 8 : list->capacity * 2;
    keys_entry *entries = memory_alloc(&list->allocator, bigger * sizeof *entries);
    if (entries == NULL)
        return SPOOL_ENOMEM;
    if (list->count > 0)
        memcpy(entries, list->entries, list->count * sizeof *entries);
    memory_free(&list->allocator, list->entries, list->capacity * sizeof *entries);
    list->entries = entries;
    list->capacity = bigger;
    return 0;
}

/* Reads one "NAME.pub" (file_name) of dir into a new entry of list. */
static int keys_allowlist_add(keys_allowlist *list, const char *dir, const char *file_name,
                              char *err, size_t err_size) {
    char path[PATH_MAX];
    int rc = keys_path(path, sizeof path, dir, "", file_name, "", err, err_size);
    if (rc != 0)
        return rc;
    size_t name_length = strlen(file_name) - strlen(".pub");
    keys_entry entry;
    memset(&entry, 0, sizeof entry);
    if (name_length > KEYS_NAME_MAX) {
        keys_say(err, err_size, "%s: the node name before .pub is longer than %d bytes", path,
                 KEYS_NAME_MAX);
        return SPOOL_ECONFIG;
    }
    memcpy(entry.name, file_name, name_length);
    entry.name[name_length] = '\0';
    char reason[160];
    if (keys_name_check(entry.name, reason, sizeof reason) != 0) {
        keys_say(err, err_size, "%s: not a node's public key file: %s", path, reason);
        return SPOOL_ECONFIG;
    }
    char text[KEYS_FILE_READ];
    size_t length = 0;
    mode_t mode = 0;
    if ((rc = keys_read_file(path, text, &length, &mode, err, err_size)) != 0)
        return rc;
    if ((mode & 022) != 0) {
        keys_say(err, err_size,
                 "%s has mode %04o: group or others may change which key this node trusts; fix "
                 "it with: chmod 644 %s",
                 path, (unsigned)mode, path);
        return SPOOL_ECONFIG;
    }
    rc = keys_parse(path, text, length, entry.public_key, entry.public_binary, err, err_size);
    if (rc != 0)
        return rc;
    if ((rc = keys_allowlist_grow(list)) != 0) {
        keys_say(err, err_size, "out of memory reading the allowlist in %s", dir);
        return rc;
    }
    list->entries[list->count++] = entry;
    return 0;
}

/* Sorts by name, then refuses one key under two names (reported in name order). */
static int keys_allowlist_finish(keys_allowlist *list, const char *dir, char *err,
                                 size_t err_size) {
    if (list->count > 1)
        qsort(list->entries, list->count, sizeof *list->entries, keys_entry_compare);
    for (size_t i = 0; i < list->count; i++) {
        for (size_t j = i + 1; j < list->count; j++) {
            if (memcmp(list->entries[i].public_binary, list->entries[j].public_binary,
                       KEYS_BINARY_SIZE) != 0)
                continue;
            char first[PATH_MAX], second[PATH_MAX];
            if (keys_path(first, sizeof first, dir, "", list->entries[i].name, ".pub", err,
                          err_size) == 0 &&
                keys_path(second, sizeof second, dir, "", list->entries[j].name, ".pub", err,
                          err_size) == 0)
                keys_say(err, err_size,
                         "%s and %s hold the same key: a key may speak for one node only", first,
                         second);
            return SPOOL_ECONFIG;
        }
    }
    return 0;
}

int keys_allowlist_load(const char *dir, const spool_allocator *allocator, keys_allowlist **out,
                        char *err, size_t err_size) {
    if (out == NULL || dir == NULL || dir[0] == '\0') {
        keys_say(err, err_size, "keys_allowlist_load: no directory or no place for the list");
        return SPOOL_EINVAL;
    }
    *out = NULL;
    const spool_allocator *a = allocator != NULL ? allocator : &memory_default_allocator;
    keys_allowlist *list = memory_calloc(a, sizeof *list);
    if (list == NULL) {
        keys_say(err, err_size, "out of memory reading the allowlist in %s", dir);
        return SPOOL_ENOMEM;
    }
    list->allocator = *a;
    DIR *directory = opendir(dir);
    if (directory == NULL) {
        int rc = keys_system_error(errno, "open the allowlist directory", dir, err, err_size);
        keys_allowlist_destroy(&list);
        return rc;
    }
    int rc = 0;
    for (;;) {
        errno = 0;
        struct dirent *entry = readdir(directory);
        if (entry == NULL) {
            if (errno != 0)
                rc = keys_system_error(errno, "read the allowlist directory", dir, err, err_size);
            break;
        }
        size_t length = strlen(entry->d_name);
        if (length < 4 || strcmp(entry->d_name + length - 4, ".pub") != 0)
            continue;
        if ((rc = keys_allowlist_add(list, dir, entry->d_name, err, err_size)) != 0)
            break;
    }
    closedir(directory);
    if (rc == 0)
        rc = keys_allowlist_finish(list, dir, err, err_size);
    if (rc != 0) {
        keys_allowlist_destroy(&list);
        return rc;
    }
    *out = list;
    return 0;
}

void keys_allowlist_destroy(keys_allowlist **list) {
    if (list == NULL || *list == NULL)
        return;
    keys_allowlist *l = *list;
    spool_allocator a = l->allocator;
    memory_free(&a, l->entries, l->capacity * sizeof *l->entries);
    memory_free(&a, l, sizeof *l);
    *list = NULL;
}

const char *keys_allowlist_find_key(const keys_allowlist *list, const char *z85_public) {
    if (list == NULL || z85_public == NULL)
        return NULL;
    for (size_t i = 0; i < list->count; i++) {
        if (strcmp(list->entries[i].public_key, z85_public) == 0)
            return list->entries[i].name;
    }
    return NULL;
}

const char *keys_allowlist_find_binary(const keys_allowlist *list,
                                       const uint8_t public_binary[KEYS_BINARY_SIZE]) {
    if (list == NULL || public_binary == NULL)
        return NULL;
    for (size_t i = 0; i < list->count; i++) {
        if (memcmp(list->entries[i].public_binary, public_binary, KEYS_BINARY_SIZE) == 0)
            return list->entries[i].name;
    }
    return NULL;
}
