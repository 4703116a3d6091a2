/*
 * test_keys.c - cmocka tests of nodes/keys.c: a generated pair's files and modes (whatever the
 * umask), loading it back, the refusals of a secret open to others (with the chmod that fixes it),
 * of malformed and mismatched key files, of an overwrite without force, the allowlist's names,
 * duplicates and bad files, and that an allowlist gives back every byte, also when memory fails.
 */
#include "nodes/keys.h"

#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zmq.h>

#include "scratch.h"
#include <cmocka.h>

#define COUNTING_MAX_BLOCKS 64
#include "counting.h"

/* A secret that only these tests know, so a test can check that no message ever quotes it. */
#define KNOWN_SECRET "^{TmhkJ^W<Io6m{@%G^)L*fY4emJxfsLWtCtG(o5"

/* Each test's scratch directory. */
typedef struct scratch {
    char dir[64];
} scratch;

/* ---------------------------------------------------------------------------------------------- */
/* Helpers                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static int make_scratch(void **state) {
    scratch *s = calloc(1, sizeof *s);
    if (s == NULL)
        return -1;
    snprintf(s->dir, sizeof s->dir, "/tmp/spool-test-keys-XXXXXX");
    if (mkdtemp(s->dir) == NULL) {
        free(s);
        return -1;
    }
    *state = s;
    return 0;
}

static int remove_scratch(void **state) {
    scratch *s = *state;
    remove_tree(s->dir);
    free(s);
    return 0;
}

static const char *scratch_dir(void **state) { return ((scratch *)*state)->dir; }

/* DIR/FILE in a static buffer (one of four, so a call may use a few at once). */
static const char *path_of(const char *dir, const char *file) {
    static char paths[4][PATH_MAX];
    static int next;
    char *path = paths[next++ % 4];
    snprintf(path, PATH_MAX, "%s/%s", dir, file);
    return path;
}

static void write_file(const char *dir, const char *file, const char *text, mode_t mode) {
    const char *path = path_of(dir, file);
    unlink(path);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_int_equal(fwrite(text, 1, strlen(text), f), strlen(text));
    assert_int_equal(fclose(f), 0);
    assert_int_equal(chmod(path, mode), 0);
}

static void read_file(const char *dir, const char *file, char *text, size_t size) {
    FILE *f = fopen(path_of(dir, file), "r");
    assert_non_null(f);
    size_t n = fread(text, 1, size - 1, f);
    text[n] = '\0';
    fclose(f);
}

static mode_t mode_of(const char *dir, const char *file) {
    struct stat st;
    assert_int_equal(stat(path_of(dir, file), &st), 0);
    return st.st_mode & 07777;
}

static void generate_ok(const char *dir, const char *name, int force, keys_pair *out) {
    char err[512] = "";
    int rc = keys_generate(dir, name, force, out, err, sizeof err);
    if (rc != 0)
        print_error("keys_generate: %s\n", err);
    assert_int_equal(rc, 0);
}

static void load_ok(const char *dir, const char *name, keys_pair *out) {
    char err[512] = "";
    int rc = keys_load_secret(dir, name, out, err, sizeof err);
    if (rc != 0)
        print_error("keys_load_secret: %s\n", err);
    assert_int_equal(rc, 0);
}

static void assert_contains(const char *text, const char *part) {
    if (strstr(text, part) == NULL) {
        print_error("'%s' does not contain '%s'\n", text, part);
        fail();
    }
}

static int is_wiped(const keys_pair *pair) {
    static const keys_pair zero;
    return memcmp(pair, &zero, sizeof zero) == 0;
}

/* Loading `name` from dir fails with `code`, an error containing `part`, and a wiped pair. */
static void expect_load_refusal(const char *dir, const char *name, int code, const char *part) {
    keys_pair pair;
    memset(&pair, 0xAA, sizeof pair);
    char err[1024] = "";
    assert_int_equal(keys_load_secret(dir, name, &pair, err, sizeof err), code);
    assert_contains(err, part);
    assert_null(strstr(err, KNOWN_SECRET));
    assert_true(is_wiped(&pair));
}

/* Loading the allowlist of dir fails with `code` and an error containing `part`. */
static void expect_allowlist_refusal(const char *dir, int code, const char *part) {
    keys_allowlist *list = (keys_allowlist *)&list; /* anything but NULL */
    char err[1024] = "";
    assert_int_equal(keys_allowlist_load(dir, NULL, &list, err, sizeof err), code);
    assert_null(list);
    assert_contains(err, part);
}

/* ---------------------------------------------------------------------------------------------- */
/* Generating and loading a pair                                                                  */
/* ---------------------------------------------------------------------------------------------- */

static void test_generate_writes_a_private_secret_and_a_public_key(void **state) {
    const char *dir = scratch_dir(state);
    keys_pair made;
    generate_ok(dir, "alpha", 0, &made);
    assert_int_equal(strlen(made.public_key), KEYS_Z85_LENGTH);
    assert_int_equal(strlen(made.secret_key), KEYS_Z85_LENGTH);
    assert_int_equal(mode_of(dir, "alpha.key"), 0600);
    assert_int_equal(mode_of(dir, "alpha.pub"), 0644);

    char text[128], line[KEYS_Z85_SIZE + 1];
    snprintf(line, sizeof line, "%s\n", made.secret_key);
    read_file(dir, "alpha.key", text, sizeof text);
    assert_string_equal(text, line);
    snprintf(line, sizeof line, "%s\n", made.public_key);
    read_file(dir, "alpha.pub", text, sizeof text);
    assert_string_equal(text, line);

    char derived[KEYS_Z85_SIZE];
    assert_int_equal(zmq_curve_public(derived, made.secret_key), 0);
    assert_string_equal(derived, made.public_key);

    keys_pair loaded;
    load_ok(dir, "alpha", &loaded);
    assert_memory_equal(&loaded, &made, sizeof made);
    keys_pair_wipe(&loaded);
    assert_true(is_wiped(&loaded));
}

static void test_generate_leaves_no_temporary_files(void **state) {
    const char *dir = scratch_dir(state);
    generate_ok(dir, "alpha", 0, NULL);
    generate_ok(dir, "alpha", 1, NULL);
    DIR *d = opendir(dir);
    assert_non_null(d);
    int files = 0;
    struct dirent *entry;
    while ((entry = readdir(d)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        assert_true(strcmp(entry->d_name, "alpha.key") == 0 ||
                    strcmp(entry->d_name, "alpha.pub") == 0);
        files++;
    }
    closedir(d);
    assert_int_equal(files, 2);
}

static void test_modes_do_not_depend_on_the_umask(void **state) {
    const char *dir = scratch_dir(state);
    mode_t old = umask(0);
    generate_ok(dir, "open", 0, NULL);
    umask(0077);
    generate_ok(dir, "closed", 0, NULL);
    umask(old);
    assert_int_equal(mode_of(dir, "open.key"), 0600);
    assert_int_equal(mode_of(dir, "open.pub"), 0644);
    assert_int_equal(mode_of(dir, "closed.key"), 0600);
    assert_int_equal(mode_of(dir, "closed.pub"), 0644);
}

static void test_generate_makes_a_missing_directory_private(void **state) {
    const char *dir = path_of(scratch_dir(state), "keys");
    char copy[PATH_MAX];
    snprintf(copy, sizeof copy, "%s", dir);
    generate_ok(copy, "alpha", 0, NULL);
    assert_int_equal(mode_of(scratch_dir(state), "keys"), 0700);
    assert_int_equal(mode_of(copy, "alpha.key"), 0600);

    char err[512] = "";
    write_file(scratch_dir(state), "plain", "x", 0644);
    assert_int_equal(
        keys_generate(path_of(scratch_dir(state), "plain"), "alpha", 0, NULL, err, sizeof err),
        SPOOL_EINVAL);
    assert_contains(err, "is not a directory");
}

static void test_generate_refuses_to_overwrite_without_force(void **state) {
    const char *dir = scratch_dir(state);
    keys_pair first, again, forced;
    generate_ok(dir, "alpha", 0, &first);

    char err[512] = "";
    memset(&again, 0xAA, sizeof again);
    assert_int_equal(keys_generate(dir, "alpha", 0, &again, err, sizeof err), SPOOL_EEXIST);
    assert_contains(err, "alpha.key already exists");
    assert_contains(err, "--force");
    assert_true(is_wiped(&again));
    load_ok(dir, "alpha", &again);
    assert_memory_equal(&again, &first, sizeof first);

    generate_ok(dir, "alpha", 1, &forced);
    assert_string_not_equal(forced.secret_key, first.secret_key);
    assert_string_not_equal(forced.public_key, first.public_key);
    assert_int_equal(mode_of(dir, "alpha.key"), 0600);
    assert_int_equal(mode_of(dir, "alpha.pub"), 0644);
    load_ok(dir, "alpha", &again);
    assert_memory_equal(&again, &forced, sizeof forced);
}

static void test_generate_refuses_when_only_the_public_key_exists(void **state) {
    const char *dir = scratch_dir(state);
    keys_pair other;
    generate_ok(dir, "other", 0, &other);
    char line[KEYS_Z85_SIZE + 1];
    snprintf(line, sizeof line, "%s\n", other.public_key);
    write_file(dir, "alpha.pub", line, 0644);

    char err[512] = "";
    assert_int_equal(keys_generate(dir, "alpha", 0, NULL, err, sizeof err), SPOOL_EEXIST);
    assert_contains(err, "alpha.pub already exists");
    assert_int_equal(access(path_of(dir, "alpha.key"), F_OK), -1);
}

static void test_generate_refuses_bad_arguments(void **state) {
    const char *dir = scratch_dir(state);
    char err[512] = "";
    assert_int_equal(keys_generate(dir, "bad name", 0, NULL, err, sizeof err), SPOOL_EINVAL);
    assert_contains(err, "byte 0x20 at offset 3");
    assert_int_equal(keys_generate(NULL, "alpha", 0, NULL, err, sizeof err), SPOOL_EINVAL);
    assert_int_equal(keys_generate("", "alpha", 0, NULL, err, sizeof err), SPOOL_EINVAL);
    assert_int_equal(keys_generate(dir, NULL, 0, NULL, NULL, 0), SPOOL_EINVAL);
}

static void test_node_names_are_checked(void **state) {
    (void)state;
    const char *good[] = {"a", "node-1", "Node_2", "host.example.org", "x-", "_x", "0"};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++)
        assert_int_equal(keys_name_check(good[i], NULL, 0), 0);
    char longest[KEYS_NAME_MAX + 2];
    memset(longest, 'n', KEYS_NAME_MAX);
    longest[KEYS_NAME_MAX] = '\0';
    assert_int_equal(keys_name_check(longest, NULL, 0), 0);

    char err[256] = "";
    longest[KEYS_NAME_MAX] = 'n';
    longest[KEYS_NAME_MAX + 1] = '\0';
    assert_int_equal(keys_name_check(longest, err, sizeof err), SPOOL_EINVAL);
    assert_contains(err, "longer than 63 bytes");
    assert_int_equal(keys_name_check("", err, sizeof err), SPOOL_EINVAL);
    assert_contains(err, "empty");
    assert_int_equal(keys_name_check(NULL, err, sizeof err), SPOOL_EINVAL);
    const char *bad[] = {".", "..", ".hidden", "-x", "a/b", "a b", "a\nb", "caf\xc3\xa9", "a:b"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(keys_name_check(bad[i], NULL, 0), SPOOL_EINVAL);
}

static void test_secret_open_to_group_or_others_is_refused_with_the_fix(void **state) {
    const char *dir = scratch_dir(state);
    generate_ok(dir, "alpha", 0, NULL);
    const char *secret = path_of(dir, "alpha.key");
    char fix[PATH_MAX + 16];
    snprintf(fix, sizeof fix, "chmod 600 %s", secret);
    const mode_t modes[] = {0640, 0604, 0620, 0602, 0660, 0644, 0610, 0601, 0700 | 0004};
    const char *words[] = {"mode 0640", "mode 0604", "mode 0620", "mode 0602", "mode 0660",
                           "mode 0644", "mode 0610", "mode 0601", "mode 0704"};
    for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++) {
        assert_int_equal(chmod(secret, modes[i]), 0);
        expect_load_refusal(dir, "alpha", SPOOL_ECONFIG, words[i]);
        expect_load_refusal(dir, "alpha", SPOOL_ECONFIG, fix);
        expect_load_refusal(dir, "alpha", SPOOL_ECONFIG, secret);
    }
    /* Owner-only modes are fine, read-only ones too. */
    const mode_t fine[] = {0400, 0600, 0700};
    for (size_t i = 0; i < sizeof fine / sizeof fine[0]; i++) {
        keys_pair pair;
        assert_int_equal(chmod(secret, fine[i]), 0);
        load_ok(dir, "alpha", &pair);
    }
}

static void test_missing_files_are_enoent(void **state) {
    const char *dir = scratch_dir(state);
    expect_load_refusal(dir, "ghost", SPOOL_ENOENT, "spool keygen");
    expect_load_refusal(path_of(dir, "nowhere"), "ghost", SPOOL_ENOENT, "no secret key");

    generate_ok(dir, "alpha", 0, NULL);
    assert_int_equal(unlink(path_of(dir, "alpha.pub")), 0);
    expect_load_refusal(dir, "alpha", SPOOL_ENOENT, "no public key");
}

static void test_malformed_secret_files_are_refused_without_quoting_them(void **state) {
    const char *dir = scratch_dir(state);
    generate_ok(dir, "alpha", 0, NULL);
    /* KNOWN_SECRET is a good key; each of these spoils it in one way. */
    char bad[16][2 * KEYS_Z85_SIZE + 4];
    int count = 0;
    snprintf(bad[count++], sizeof bad[0], "%s", "");
    snprintf(bad[count++], sizeof bad[0], "%s", "\n");
    snprintf(bad[count++], sizeof bad[0], "%.39s\n", KNOWN_SECRET); /* 39 characters */
    snprintf(bad[count++], sizeof bad[0], "%sx", KNOWN_SECRET);     /* 41 characters */
    snprintf(bad[count++], sizeof bad[0], "%s\n\n", KNOWN_SECRET);  /* two newlines */
    snprintf(bad[count++], sizeof bad[0], "%s\r\n", KNOWN_SECRET);  /* CR LF */
    snprintf(bad[count++], sizeof bad[0], "%s ", KNOWN_SECRET);     /* trailing space */
    snprintf(bad[count++], sizeof bad[0], " %s", KNOWN_SECRET);     /* leading space */
    snprintf(bad[count++], sizeof bad[0], "%s\n%s\n", KNOWN_SECRET, KNOWN_SECRET);
    snprintf(bad[count++], sizeof bad[0], "%.39s,\n", KNOWN_SECRET); /* ',' is not Z85 */
    snprintf(bad[count++], sizeof bad[0], "%.39s~\n", KNOWN_SECRET); /* '~' is not Z85 */
    snprintf(bad[count++], sizeof bad[0], "%.20s\"%s", KNOWN_SECRET, KNOWN_SECRET + 21);
    snprintf(bad[count++], sizeof bad[0], "%.20s %s", KNOWN_SECRET, KNOWN_SECRET + 21);
    snprintf(bad[count++], sizeof bad[0], "#####%s", KNOWN_SECRET + 5); /* over 2^32 */
    for (int i = 0; i < count; i++) {
        write_file(dir, "alpha.key", bad[i], 0600);
        expect_load_refusal(dir, "alpha", SPOOL_ECONFIG, "alpha.key is not a key");
    }
    write_file(dir, "alpha.key", bad[count - 1], 0600);
    expect_load_refusal(dir, "alpha", SPOOL_ECONFIG, "does not decode");
    /* The good key itself, to show that the cases above fail for their own reason only. */
    keys_pair loaded;
    char public_key[KEYS_Z85_SIZE];
    assert_int_equal(zmq_curve_public(public_key, KNOWN_SECRET), 0);
    write_file(dir, "alpha.key", KNOWN_SECRET "\n", 0600);
    write_file(dir, "alpha.pub", public_key, 0644);
    load_ok(dir, "alpha", &loaded);
    assert_string_equal(loaded.secret_key, KNOWN_SECRET);
    assert_string_equal(loaded.public_key, public_key);
    /* A NUL inside the 40 bytes. */
    char with_nul[KEYS_Z85_LENGTH + 1];
    memset(with_nul, 'a', sizeof with_nul);
    with_nul[7] = '\0';
    with_nul[KEYS_Z85_LENGTH] = '\n';
    FILE *f = fopen(path_of(dir, "alpha.key"), "w");
    assert_non_null(f);
    assert_int_equal(fwrite(with_nul, 1, sizeof with_nul, f), sizeof with_nul);
    fclose(f);
    expect_load_refusal(dir, "alpha", SPOOL_ECONFIG, "byte 7 is not a Z85 character");
}

static void test_a_secret_without_its_newline_loads(void **state) {
    const char *dir = scratch_dir(state);
    keys_pair made, loaded;
    generate_ok(dir, "alpha", 0, &made);
    write_file(dir, "alpha.key", made.secret_key, 0600);
    write_file(dir, "alpha.pub", made.public_key, 0644);
    load_ok(dir, "alpha", &loaded);
    assert_memory_equal(&loaded, &made, sizeof made);
}

static void test_a_secret_that_is_not_a_regular_file_is_refused(void **state) {
    const char *dir = scratch_dir(state);
    assert_int_equal(mkdir(path_of(dir, "alpha.key"), 0700), 0);
    expect_load_refusal(dir, "alpha", SPOOL_ECONFIG, "not a regular file");
    assert_int_equal(rmdir(path_of(dir, "alpha.key")), 0);
    /* A FIFO must not make the load wait for a writer. */
    assert_int_equal(mkfifo(path_of(dir, "alpha.key"), 0600), 0);
    expect_load_refusal(dir, "alpha", SPOOL_ECONFIG, "not a regular file");
}

static void test_a_public_key_of_another_pair_is_refused(void **state) {
    const char *dir = scratch_dir(state);
    keys_pair alpha, beta;
    generate_ok(dir, "alpha", 0, &alpha);
    generate_ok(dir, "beta", 0, &beta);
    char line[KEYS_Z85_SIZE + 1];
    snprintf(line, sizeof line, "%s\n", beta.public_key);
    write_file(dir, "alpha.pub", line, 0644);
    expect_load_refusal(dir, "alpha", SPOOL_ECONFIG, "alpha.pub does not match the secret key");
    expect_load_refusal(dir, "alpha", SPOOL_ECONFIG, alpha.public_key);

    write_file(dir, "alpha.pub", "not a key\n", 0644);
    expect_load_refusal(dir, "alpha", SPOOL_ECONFIG, "alpha.pub is not a key");
}

static void test_load_refuses_bad_arguments(void **state) {
    const char *dir = scratch_dir(state);
    keys_pair pair;
    char err[256] = "";
    assert_int_equal(keys_load_secret(dir, "alpha", NULL, err, sizeof err), SPOOL_EINVAL);
    assert_int_equal(keys_load_secret(NULL, "alpha", &pair, err, sizeof err), SPOOL_EINVAL);
    expect_load_refusal(dir, "../alpha", SPOOL_EINVAL, "byte 0x2f");
    expect_load_refusal(dir, "", SPOOL_EINVAL, "empty");
}

/* ---------------------------------------------------------------------------------------------- */
/* The allowlist                                                                                  */
/* ---------------------------------------------------------------------------------------------- */

static void test_allowlist_holds_every_public_key_by_name(void **state) {
    const char *dir = scratch_dir(state);
    const char *names[] = {"gamma", "alpha", "beta.example", "delta-2"};
    keys_pair pairs[4];
    for (int i = 0; i < 4; i++)
        generate_ok(dir, names[i], 0, &pairs[i]);
    write_file(dir, "README", "not a key", 0644);
    write_file(dir, ".gamma.pub.Ab12Cd", "a leftover temporary file", 0600);
    write_file(dir, "notes.pub.txt", "not a key either", 0644);

    keys_allowlist *list = NULL;
    char err[512] = "";
    int rc = keys_allowlist_load(dir, NULL, &list, err, sizeof err);
    if (rc != 0)
        print_error("keys_allowlist_load: %s\n", err);
    assert_int_equal(rc, 0);
    assert_non_null(list);
    assert_int_equal(list->count, 4);
    assert_string_equal(list->entries[0].name, "alpha");
    assert_string_equal(list->entries[1].name, "beta.example");
    assert_string_equal(list->entries[2].name, "delta-2");
    assert_string_equal(list->entries[3].name, "gamma");
    for (int i = 0; i < 4; i++) {
        assert_string_equal(keys_allowlist_find_key(list, pairs[i].public_key), names[i]);
        uint8_t binary[KEYS_BINARY_SIZE];
        assert_non_null(zmq_z85_decode(binary, pairs[i].public_key));
        assert_string_equal(keys_allowlist_find_binary(list, binary), names[i]);
        /* A secret key is not a public one. */
        assert_null(keys_allowlist_find_key(list, pairs[i].secret_key));
    }
    char stranger_public[KEYS_Z85_SIZE], stranger_secret[KEYS_Z85_SIZE];
    assert_int_equal(zmq_curve_keypair(stranger_public, stranger_secret), 0);
    assert_null(keys_allowlist_find_key(list, stranger_public));
    assert_null(keys_allowlist_find_key(list, ""));
    assert_null(keys_allowlist_find_key(list, NULL));
    assert_null(keys_allowlist_find_key(NULL, stranger_public));

    keys_allowlist_destroy(&list);
    assert_null(list);
    keys_allowlist_destroy(&list);
    keys_allowlist_destroy(NULL);
}

static void test_allowlist_of_an_empty_directory_is_empty(void **state) {
    keys_allowlist *list = NULL;
    assert_int_equal(keys_allowlist_load(scratch_dir(state), NULL, &list, NULL, 0), 0);
    assert_non_null(list);
    assert_int_equal(list->count, 0);
    assert_null(keys_allowlist_find_key(list, "anything"));
    keys_allowlist_destroy(&list);
}

static void test_allowlist_of_a_missing_directory_is_enoent(void **state) {
    expect_allowlist_refusal(path_of(scratch_dir(state), "nowhere"), SPOOL_ENOENT, "nowhere");
}

static void test_allowlist_refuses_one_key_under_two_names(void **state) {
    const char *dir = scratch_dir(state);
    keys_pair alpha;
    generate_ok(dir, "alpha", 0, &alpha);
    generate_ok(dir, "beta", 0, NULL);
    char line[KEYS_Z85_SIZE + 1];
    snprintf(line, sizeof line, "%s\n", alpha.public_key);
    write_file(dir, "zeta.pub", line, 0644);
    char both[2 * PATH_MAX];
    snprintf(both, sizeof both, "%s/alpha.pub and %s/zeta.pub hold the same key", dir, dir);
    expect_allowlist_refusal(dir, SPOOL_ECONFIG, both);
    /* Without its newline it is still the same key. */
    write_file(dir, "zeta.pub", alpha.public_key, 0644);
    expect_allowlist_refusal(dir, SPOOL_ECONFIG, both);
}

static void test_allowlist_refuses_bad_names(void **state) {
    const char *dir = scratch_dir(state);
    keys_pair pair;
    generate_ok(dir, "alpha", 0, &pair);
    char line[KEYS_Z85_SIZE + 1], other_public[KEYS_Z85_SIZE], other_secret[KEYS_Z85_SIZE];
    assert_int_equal(zmq_curve_keypair(other_public, other_secret), 0);
    snprintf(line, sizeof line, "%s\n", other_public);

    char too_long[KEYS_NAME_MAX + 8];
    memset(too_long, 'n', KEYS_NAME_MAX + 1);
    snprintf(too_long + KEYS_NAME_MAX + 1, 5, ".pub");
    const char *bad[] = {"bad name.pub", ".hidden.pub",     ".pub",
                         "-x.pub",       "caf\xc3\xa9.pub", too_long};
    const char *words[] = {"byte 0x20",       "begins with '.'", "empty",
                           "begins with '-'", "byte 0xc3",       "longer than 63 bytes"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        write_file(dir, bad[i], line, 0644);
        expect_allowlist_refusal(dir, SPOOL_ECONFIG, words[i]);
        expect_allowlist_refusal(dir, SPOOL_ECONFIG, path_of(dir, bad[i]));
        assert_int_equal(unlink(path_of(dir, bad[i])), 0);
    }
    /* The longest name is fine. */
    too_long[KEYS_NAME_MAX] = '\0';
    strcat(too_long, ".pub");
    write_file(dir, too_long, line, 0644);
    keys_allowlist *list = NULL;
    assert_int_equal(keys_allowlist_load(dir, NULL, &list, NULL, 0), 0);
    assert_int_equal(list->count, 2);
    assert_int_equal(strlen(keys_allowlist_find_key(list, other_public)), KEYS_NAME_MAX);
    keys_allowlist_destroy(&list);
}

static void test_allowlist_refuses_bad_files(void **state) {
    const char *dir = scratch_dir(state);
    generate_ok(dir, "alpha", 0, NULL);

    write_file(dir, "beta.pub", "not a key\n", 0644);
    expect_allowlist_refusal(dir, SPOOL_ECONFIG, "beta.pub is not a key");
    assert_int_equal(unlink(path_of(dir, "beta.pub")), 0);

    assert_int_equal(mkdir(path_of(dir, "gamma.pub"), 0755), 0);
    expect_allowlist_refusal(dir, SPOOL_ECONFIG, "gamma.pub is not a regular file");
    assert_int_equal(rmdir(path_of(dir, "gamma.pub")), 0);

    /* Whoever may write a .pub may make the node trust any key. */
    assert_int_equal(chmod(path_of(dir, "alpha.pub"), 0664), 0);
    expect_allowlist_refusal(dir, SPOOL_ECONFIG, "mode 0664");
    char fix[PATH_MAX + 16];
    snprintf(fix, sizeof fix, "chmod 644 %s", path_of(dir, "alpha.pub"));
    expect_allowlist_refusal(dir, SPOOL_ECONFIG, fix);
    assert_int_equal(chmod(path_of(dir, "alpha.pub"), 0646), 0);
    expect_allowlist_refusal(dir, SPOOL_ECONFIG, "mode 0646");
    assert_int_equal(chmod(path_of(dir, "alpha.pub"), 0444), 0);
    keys_allowlist *list = NULL;
    assert_int_equal(keys_allowlist_load(dir, NULL, &list, NULL, 0), 0);
    assert_int_equal(list->count, 1);
    keys_allowlist_destroy(&list);

    assert_int_equal(keys_allowlist_load(NULL, NULL, &list, NULL, 0), SPOOL_EINVAL);
    assert_int_equal(keys_allowlist_load(dir, NULL, NULL, NULL, 0), SPOOL_EINVAL);
}

static void test_allowlist_gives_back_every_byte_when_memory_fails(void **state) {
    const char *dir = scratch_dir(state);
    /* More keys than the first array holds, so that it grows. */
    for (int i = 0; i < 20; i++) {
        char name[16];
        snprintf(name, sizeof name, "node%02d", i);
        generate_ok(dir, name, 0, NULL);
    }
    counting *c = calloc(1, sizeof *c);
    assert_non_null(c);
    spool_allocator a = {counting_alloc, counting_free, c};
    keys_allowlist *list = NULL;
    assert_int_equal(keys_allowlist_load(dir, &a, &list, NULL, 0), 0);
    assert_int_equal(list->count, 20);
    assert_string_equal(list->entries[19].name, "node19");
    keys_allowlist_destroy(&list);
    assert_int_equal(c->live_blocks, 0);
    assert_int_equal(c->bad_frees, 0);
    size_t needed = c->allocations;
    assert_true(needed >= 3);

    for (size_t n = 1; n <= needed; n++) {
        memset(c, 0, sizeof *c);
        c->fail_at = n;
        char err[256] = "";
        list = (keys_allowlist *)&list;
        assert_int_equal(keys_allowlist_load(dir, &a, &list, err, sizeof err), SPOOL_ENOMEM);
        assert_null(list);
        assert_contains(err, "out of memory");
        assert_int_equal(c->live_blocks, 0);
        assert_int_equal(c->bad_frees, 0);
    }
    free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
#define TEST(name) cmocka_unit_test_setup_teardown(name, make_scratch, remove_scratch)
        TEST(test_generate_writes_a_private_secret_and_a_public_key),
        TEST(test_generate_leaves_no_temporary_files),
        TEST(test_modes_do_not_depend_on_the_umask),
        TEST(test_generate_makes_a_missing_directory_private),
        TEST(test_generate_refuses_to_overwrite_without_force),
        TEST(test_generate_refuses_when_only_the_public_key_exists),
        TEST(test_generate_refuses_bad_arguments),
        TEST(test_node_names_are_checked),
        TEST(test_secret_open_to_group_or_others_is_refused_with_the_fix),
        TEST(test_missing_files_are_enoent),
        TEST(test_malformed_secret_files_are_refused_without_quoting_them),
        TEST(test_a_secret_without_its_newline_loads),
        TEST(test_a_secret_that_is_not_a_regular_file_is_refused),
        TEST(test_a_public_key_of_another_pair_is_refused),
        TEST(test_load_refuses_bad_arguments),
        TEST(test_allowlist_holds_every_public_key_by_name),
        TEST(test_allowlist_of_an_empty_directory_is_empty),
        TEST(test_allowlist_of_a_missing_directory_is_enoent),
        TEST(test_allowlist_refuses_one_key_under_two_names),
        TEST(test_allowlist_refuses_bad_names),
        TEST(test_allowlist_refuses_bad_files),
        TEST(test_allowlist_gives_back_every_byte_when_memory_fails),
#undef TEST
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
