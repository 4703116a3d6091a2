/*
 * test_config.c - cmocka tests of scheduler/config.c: how settings_load merges defaults, the INI
 * file, SPOOL_* variables and spool_config, the "source: reason" of every refusal, rule matching,
 * and that every byte goes back to the allocator, also when an allocation fails.
 */
#include "scheduler/config.h"

#include "mailbox/memory.h"

#include <dirent.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define COUNTING_MAX_BLOCKS 512
#include "counting.h"

static const char example_ini[] =
    "[runtime]\n"
    "threads = 4\n"
    "cpus    = 0-1            ; thread i pinned to the i-th CPU listed\n"
    "batch   = 64             ; messages per actor per turn\n"
    "admin   = ipc:///tmp/spool.sock\n"
    "\n"
    "[placement]\n"
    "default = round_robin    ; round_robin | least_loaded | hash\n"
    "sqlite  = 1              ; actor or module name -> thread\n"
    "logger  = dedicated      ; a thread of its own; nothing else is placed there\n"
    "cache   = near:sqlite    ; on the same thread as another actor\n"
    "worker* = least_loaded   ; glob on names\n";

static const char unknown_placement_reason[] =
    "(expected a thread number, round_robin, least_loaded, hash, dedicated, dedicated:K or "
    "near:NAME)";

static const char *const spool_variables[] = {"SPOOL_THREADS", "SPOOL_CPUS", "SPOOL_BATCH",
                                              "SPOOL_ADMIN", "SPOOL_CONFIG"};

/* The group's state: a scratch directory for INI files. */
typedef struct scratch {
    char dir[64];
    char path[PATH_MAX];
    int files;
} scratch;

/* ---------------------------------------------------------------------------------------------- */
/* Helpers                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static int make_scratch(void **state) {
    scratch *s = calloc(1, sizeof *s);
    if (!s)
        return -1;
    snprintf(s->dir, sizeof s->dir, "/tmp/spool-test-config-XXXXXX");
    if (!mkdtemp(s->dir)) {
        free(s);
        return -1;
    }
    *state = s;
    return 0;
}

static int remove_scratch(void **state) {
    scratch *s = *state;
    DIR *dir = opendir(s->dir);
    if (dir) {
        struct dirent *entry;
        char path[PATH_MAX];
        while ((entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
                continue;
            snprintf(path, sizeof path, "%s/%s", s->dir, entry->d_name);
            unlink(path);
        }
        closedir(dir);
    }
    rmdir(s->dir);
    free(s);
    return 0;
}

/* Writes `text` to a new file in the scratch directory; returns its path (valid until the next). */
static const char *write_ini(void **state, const char *text) {
    scratch *s = *state;
    snprintf(s->path, sizeof s->path, "%s/test%d.ini", s->dir, ++s->files);
    FILE *file = fopen(s->path, "w");
    assert_non_null(file);
    assert_int_equal(fputs(text, file) >= 0, 1);
    assert_int_equal(fclose(file), 0);
    return s->path;
}

static spool_config quiet_config(void) {
    spool_config config;
    memset(&config, 0, sizeof config);
    config.ignore_environment = 1;
    return config;
}

static void clear_environment(void) {
    for (size_t i = 0; i < sizeof spool_variables / sizeof spool_variables[0]; i++)
        unsetenv(spool_variables[i]);
}

static int online_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n < 1 ? 1 : n > SETTINGS_MAX_THREADS ? SETTINGS_MAX_THREADS : (int)n;
}

static long machine_cpus(void) { return sysconf(_SC_NPROCESSORS_CONF); }

static void assert_zeroed(const runtime_settings *s) {
    static const runtime_settings zero;
    assert_memory_equal(s, &zero, sizeof zero);
}

/* Loads `config` and expects SPOOL_ECONFIG with exactly `message`, and nothing left in out. */
static void expect_refusal(const spool_config *config, const char *message) {
    runtime_settings s;
    char err[512];
    assert_int_equal(settings_load(config, NULL, &s, err, sizeof err), SPOOL_ECONFIG);
    assert_string_equal(err, message);
    assert_zeroed(&s);
}

/* Writes `text` as a file, loads it without the environment, expects "path:line: reason". */
static void expect_file_refusal(void **state, const char *text, int line, const char *reason) {
    spool_config config = quiet_config();
    char message[PATH_MAX + 512];
    config.config_file = write_ini(state, text);
    snprintf(message, sizeof message, "%s:%d: %s", config.config_file, line, reason);
    expect_refusal(&config, message);
}

static void load_ok(const spool_config *config, runtime_settings *s) {
    char err[512] = "";
    int rc = settings_load(config, NULL, s, err, sizeof err);
    if (rc != 0)
        print_error("settings_load: %s\n", err);
    assert_int_equal(rc, 0);
}

/* A config that makes settings_load allocate in every way it can: file, C rules, cpus, admin. */
static spool_config busy_config(void **state, const spool_placement_rule *rules, size_t count) {
    spool_config config = quiet_config();
    config.config_file = write_ini(state, example_ini);
    config.placement = rules;
    config.placement_count = count;
    config.cpus = "1,0";
    config.admin = "tcp://127.0.0.1:7000";
    return config;
}

/* ---------------------------------------------------------------------------------------------- */
/* Merging                                                                                        */
/* ---------------------------------------------------------------------------------------------- */

static void test_defaults_when_nothing_is_set(void **state) {
    (void)state;
    spool_config config = quiet_config();
    runtime_settings s;
    load_ok(&config, &s);
    assert_int_equal(s.threads, online_threads());
    assert_null(s.cpus);
    assert_int_equal(s.cpu_count, 0);
    assert_int_equal(s.batch, SETTINGS_DEFAULT_BATCH);
    assert_string_equal(s.admin, "");
    assert_int_equal(s.default_policy, PLACE_ROUND_ROBIN);
    assert_null(s.rules);
    assert_int_equal(s.rule_count, 0);
    assert_int_equal(s.max_message_size, SETTINGS_DEFAULT_MAX_MESSAGE);
    assert_true(s.seed != 0);
    assert_ptr_equal(s.allocator, &memory_default_allocator);
    settings_free(&s);
    assert_zeroed(&s);
}

static void test_null_config_reads_defaults_and_environment(void **state) {
    (void)state;
    runtime_settings s;
    clear_environment();
    load_ok(NULL, &s);
    assert_int_equal(s.threads, online_threads());
    assert_int_equal(s.batch, SETTINGS_DEFAULT_BATCH);
    settings_free(&s);

    setenv("SPOOL_BATCH", "5", 1);
    load_ok(NULL, &s);
    assert_int_equal(s.batch, 5);
    settings_free(&s);
    clear_environment();
}

static void test_file_values_are_read(void **state) {
    spool_config config = quiet_config();
    runtime_settings s;
    config.config_file = write_ini(state, "# a comment\n"
                                          "[runtime]\n"
                                          "  threads = 3\n"
                                          "cpus = 1, 0-1\n"
                                          "batch = 16\n"
                                          "admin = tcp://localhost:9000\n"
                                          "max_message_size = 4096\n"
                                          "[placement]\n"
                                          "; another comment\n"
                                          "default = hash\n"
                                          "db = 2\n");
    load_ok(&config, &s);
    assert_int_equal(s.threads, 3);
    assert_int_equal(s.cpu_count, 3);
    assert_int_equal(s.cpus[0], 1);
    assert_int_equal(s.cpus[1], 0);
    assert_int_equal(s.cpus[2], 1);
    assert_int_equal(s.batch, 16);
    assert_string_equal(s.admin, "tcp://localhost:9000");
    assert_int_equal(s.max_message_size, 4096);
    assert_int_equal(s.default_policy, PLACE_HASH);
    assert_int_equal(s.rule_count, 1);
    assert_string_equal(s.rules[0].pattern, "db");
    assert_int_equal(s.rules[0].kind, PLACE_THREAD);
    assert_int_equal(s.rules[0].thread, 2);
    settings_free(&s);
}

static void test_environment_overrides_file(void **state) {
    spool_config config;
    runtime_settings s;
    memset(&config, 0, sizeof config);
    clear_environment();
    config.config_file = write_ini(state, "[runtime]\nthreads = 2\ncpus = 0\nbatch = 8\n"
                                          "admin = from-file\n");
    setenv("SPOOL_THREADS", "3", 1);
    setenv("SPOOL_CPUS", "1", 1);
    setenv("SPOOL_BATCH", "16", 1);
    setenv("SPOOL_ADMIN", "from-env", 1);
    load_ok(&config, &s);
    assert_int_equal(s.threads, 3);
    assert_int_equal(s.cpu_count, 1);
    assert_int_equal(s.cpus[0], 1);
    assert_int_equal(s.batch, 16);
    assert_string_equal(s.admin, "from-env");
    settings_free(&s);
    clear_environment();
}

static void test_empty_variable_counts_as_unset(void **state) {
    spool_config config;
    runtime_settings s;
    memset(&config, 0, sizeof config);
    clear_environment();
    config.config_file = write_ini(state, "[runtime]\nthreads = 2\n");
    setenv("SPOOL_THREADS", "", 1);
    load_ok(&config, &s);
    assert_int_equal(s.threads, 2);
    settings_free(&s);
    clear_environment();
}

static void test_config_fields_override_environment(void **state) {
    static const spool_placement_rule rule = {"db", "1"};
    spool_config config;
    runtime_settings s;
    memset(&config, 0, sizeof config);
    clear_environment();
    config.config_file = write_ini(state, "[runtime]\nthreads = 2\nmax_message_size = 100\n"
                                          "[placement]\ndefault = hash\n");
    setenv("SPOOL_THREADS", "3", 1);
    setenv("SPOOL_CPUS", "1", 1);
    setenv("SPOOL_BATCH", "16", 1);
    setenv("SPOOL_ADMIN", "from-env", 1);
    config.threads = 5;
    config.cpus = "0-1";
    config.batch = 32;
    config.admin = "from-c";
    config.placement_default = "least_loaded";
    config.max_message_size = 200;
    config.seed = 42;
    config.placement = &rule;
    config.placement_count = 1;
    load_ok(&config, &s);
    assert_int_equal(s.threads, 5);
    assert_int_equal(s.cpu_count, 2);
    assert_int_equal(s.cpus[0], 0);
    assert_int_equal(s.cpus[1], 1);
    assert_int_equal(s.batch, 32);
    assert_string_equal(s.admin, "from-c");
    assert_int_equal(s.default_policy, PLACE_LEAST_LOADED);
    assert_int_equal(s.max_message_size, 200);
    assert_int_equal(s.seed, 42);
    settings_free(&s);
    clear_environment();
}

static void test_spool_config_variable_names_the_file(void **state) {
    spool_config config;
    runtime_settings s;
    memset(&config, 0, sizeof config);
    clear_environment();
    setenv("SPOOL_CONFIG", write_ini(state, "[runtime]\nbatch = 7\n"), 1);
    load_ok(&config, &s);
    assert_int_equal(s.batch, 7);
    settings_free(&s);

    config.config_file = write_ini(state, "[runtime]\nbatch = 9\n");
    load_ok(&config, &s);
    assert_int_equal(s.batch, 9);
    settings_free(&s);
    clear_environment();
}

static void test_ignore_environment_skips_spool_variables(void **state) {
    spool_config config = quiet_config();
    runtime_settings s;
    clear_environment();
    setenv("SPOOL_CONFIG", write_ini(state, "[runtime]\nbatch = 7\n"), 1);
    setenv("SPOOL_THREADS", "3", 1);
    setenv("SPOOL_BATCH", "nonsense", 1);
    load_ok(&config, &s);
    assert_int_equal(s.threads, online_threads());
    assert_int_equal(s.batch, SETTINGS_DEFAULT_BATCH);
    settings_free(&s);
    clear_environment();
}

static void test_brief_example_file_parses(void **state) {
    spool_config config = quiet_config();
    runtime_settings s;
    char source[PATH_MAX + 16];
    config.config_file = write_ini(state, example_ini);
    load_ok(&config, &s);
    assert_int_equal(s.threads, 4);
    assert_int_equal(s.cpu_count, 2);
    assert_int_equal(s.cpus[0], 0);
    assert_int_equal(s.cpus[1], 1);
    assert_int_equal(s.batch, 64);
    assert_string_equal(s.admin, "ipc:///tmp/spool.sock");
    assert_int_equal(s.default_policy, PLACE_ROUND_ROBIN);
    assert_int_equal(s.rule_count, 4);

    assert_string_equal(s.rules[0].pattern, "sqlite");
    assert_false(s.rules[0].is_glob);
    assert_int_equal(s.rules[0].kind, PLACE_THREAD);
    assert_int_equal(s.rules[0].thread, 1);
    assert_null(s.rules[0].near);
    snprintf(source, sizeof source, "%s:9", config.config_file);
    assert_string_equal(s.rules[0].source, source);

    assert_string_equal(s.rules[1].pattern, "logger");
    assert_int_equal(s.rules[1].kind, PLACE_DEDICATED);
    assert_int_equal(s.rules[1].thread, 3);
    snprintf(source, sizeof source, "%s:10", config.config_file);
    assert_string_equal(s.rules[1].source, source);

    assert_string_equal(s.rules[2].pattern, "cache");
    assert_int_equal(s.rules[2].kind, PLACE_NEAR);
    assert_string_equal(s.rules[2].near, "sqlite");
    snprintf(source, sizeof source, "%s:11", config.config_file);
    assert_string_equal(s.rules[2].source, source);

    assert_string_equal(s.rules[3].pattern, "worker*");
    assert_true(s.rules[3].is_glob);
    assert_int_equal(s.rules[3].kind, PLACE_LEAST_LOADED);
    snprintf(source, sizeof source, "%s:12", config.config_file);
    assert_string_equal(s.rules[3].source, source);
    settings_free(&s);
}

static void test_config_rules_come_before_file_rules(void **state) {
    static const spool_placement_rule rules[] = {{"a", "hash"}, {"b*", "near:a"}};
    spool_config config = quiet_config();
    runtime_settings s;
    char source[PATH_MAX + 16];
    config.config_file = write_ini(state, "[runtime]\nthreads = 2\n[placement]\nc = 0\n");
    config.placement = rules;
    config.placement_count = 2;
    load_ok(&config, &s);
    assert_int_equal(s.rule_count, 3);
    assert_string_equal(s.rules[0].pattern, "a");
    assert_string_equal(s.rules[0].source, "config.placement[0]");
    assert_string_equal(s.rules[1].pattern, "b*");
    assert_true(s.rules[1].is_glob);
    assert_string_equal(s.rules[1].source, "config.placement[1]");
    assert_string_equal(s.rules[2].pattern, "c");
    snprintf(source, sizeof source, "%s:4", config.config_file);
    assert_string_equal(s.rules[2].source, source);
    settings_free(&s);
}

static void test_thread_rules_are_checked_against_the_final_thread_count(void **state) {
    spool_config config = quiet_config();
    runtime_settings s;
    char message[PATH_MAX + 128];
    config.config_file = write_ini(state, "[runtime]\nthreads = 2\n[placement]\na = 3\n");
    config.threads = 4;
    load_ok(&config, &s);
    assert_int_equal(s.rules[0].thread, 3);
    settings_free(&s);

    config.config_file = write_ini(state, "[runtime]\nthreads = 8\n[placement]\na = 6\n");
    config.threads = 4;
    snprintf(message, sizeof message, "%s:4: thread 6 does not exist (threads = 4)",
             config.config_file);
    expect_refusal(&config, message);

    clear_environment();
    config.ignore_environment = 0;
    config.threads = 0;
    setenv("SPOOL_THREADS", "4", 1);
    expect_refusal(&config, message);
    clear_environment();
}

static void test_cpu_lists_and_ranges(void **state) {
    (void)state;
    spool_config config = quiet_config();
    runtime_settings s;
    config.cpus = "1 , 0-1,0";
    load_ok(&config, &s);
    assert_int_equal(s.cpu_count, 4);
    assert_int_equal(s.cpus[0], 1);
    assert_int_equal(s.cpus[1], 0);
    assert_int_equal(s.cpus[2], 1);
    assert_int_equal(s.cpus[3], 0);
    settings_free(&s);

    config.cpus = "";
    load_ok(&config, &s);
    assert_null(s.cpus);
    assert_int_equal(s.cpu_count, 0);
    settings_free(&s);
}

static void test_inline_comments_and_indentation_are_ignored(void **state) {
    spool_config config = quiet_config();
    runtime_settings s;
    config.config_file = write_ini(state, "\xEF\xBB\xBF[runtime]   ; the runtime\r\n"
                                          "\tthreads = 2 ; two\r\n"
                                          "    batch = 3\r\n"
                                          "admin = a;b\r\n"
                                          "# done\r\n");
    load_ok(&config, &s);
    assert_int_equal(s.threads, 2);
    assert_int_equal(s.batch, 3);
    assert_string_equal(s.admin, "a;b");
    settings_free(&s);
}

/* ---------------------------------------------------------------------------------------------- */
/* Refusals                                                                                       */
/* ---------------------------------------------------------------------------------------------- */

static void test_missing_file_is_refused(void **state) {
    scratch *dir = *state;
    spool_config config = quiet_config();
    char path[PATH_MAX], message[PATH_MAX + 64];
    snprintf(path, sizeof path, "%s/does-not-exist.ini", dir->dir);
    config.config_file = path;
    snprintf(message, sizeof message, "%s: cannot open: No such file or directory", path);
    expect_refusal(&config, message);

    config.config_file = dir->dir;
    snprintf(message, sizeof message, "%s: cannot read: Is a directory", dir->dir);
    expect_refusal(&config, message);
}

static void test_unknown_section_is_refused(void **state) {
    expect_file_refusal(state, "[runtime]\nthreads = 2\n\n[network]\nport = 1\n", 4,
                        "unknown section [network] (expected [runtime], [placement] or [node])");
    expect_file_refusal(state, "[runtime]\n[Runtime]\n", 2,
                        "unknown section [Runtime] (expected [runtime], [placement] or [node])");
}

static void test_key_outside_a_section_is_refused(void **state) {
    expect_file_refusal(state, "; top\nthreads = 2\n", 2,
                        "'threads' is outside a section ([runtime] or [placement])");
}

static void test_unknown_runtime_key_is_refused(void **state) {
    expect_file_refusal(state, "[runtime]\nthreads = 2\nthread = 2\n", 3,
                        "unknown key 'thread' in [runtime] (expected threads, cpus, batch, admin "
                        "or max_message_size)");
}

static void test_syntax_errors_are_refused(void **state) {
    char long_line[400];
    expect_file_refusal(state, "[runtime]\nthreads\n", 2,
                        "expected 'key = value', '[section]' or a comment");
    expect_file_refusal(state, "[runtime\nthreads = 2\n", 1, "section header without ']'");
    expect_file_refusal(state, "[runtime]\n= 2\n", 2, "a key is missing before '='");
    snprintf(long_line, sizeof long_line, "[runtime]\nadmin = %0300d\n", 0);
    expect_file_refusal(state, long_line, 2, "line too long (the limit is 197 characters)");
}

static void test_duplicate_keys_are_refused(void **state) {
    expect_file_refusal(state, "[runtime]\nthreads = 2\nbatch = 1\nthreads = 3\n", 4,
                        "threads is already set on line 2");
    expect_file_refusal(state, "[placement]\ndefault = hash\ndefault = hash\n", 3,
                        "default is already set on line 2");
}

static void test_duplicate_file_rules_are_refused(void **state) {
    char reason[PATH_MAX + 64];
    scratch *dir = *state;
    snprintf(reason, sizeof reason, "'db' already has a rule (%s/test%d.ini:2)", dir->dir,
             dir->files + 1);
    expect_file_refusal(state, "[placement]\ndb = 1\nweb = 0\ndb = 0\n", 4, reason);
}

static void test_bad_numbers_are_refused(void **state) {
    static const struct {
        const char *line;
        const char *reason;
    } cases[] = {
        {"threads = four", "threads must be a number from 1 to 256, not 'four'"},
        {"threads = 4x", "threads must be a number from 1 to 256, not '4x'"},
        {"threads = -1", "threads must be a number from 1 to 256, not '-1'"},
        {"threads = 0", "threads must be a number from 1 to 256, not '0'"},
        {"threads = 257", "threads must be a number from 1 to 256, not '257'"},
        {"threads =", "threads must be a number from 1 to 256, not ''"},
        {"batch = 0", "batch must be a number from 1 to 65536, not '0'"},
        {"batch = 65537", "batch must be a number from 1 to 65536, not '65537'"},
        {"batch = 99999999999999999999999", "batch must be a number from 1 to 65536, not "
                                            "'99999999999999999999999'"},
        {"max_message_size = 0", "max_message_size must be a number of bytes (1 or more), not '0'"},
        {"max_message_size = 1k", "max_message_size must be a number of bytes (1 or more), not "
                                  "'1k'"},
    };
    char text[256];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, "[runtime]\n%s\n", cases[i].line);
        expect_file_refusal(state, text, 2, cases[i].reason);
    }
}

static void test_bad_cpu_lists_are_refused(void **state) {
    static const struct {
        const char *cpus;
        const char *reason;
    } cases[] = {
        {"0,,1", "cpus '0,,1': empty item"},
        {"0,", "cpus '0,': empty item"},
        {",0", "cpus ',0': empty item"},
        {"1-0", "cpus '1-0': range 1-0 is reversed"},
        {"a", "cpus 'a': 'a' is not a CPU number or a range like 0-3"},
        {"0,x-1", "cpus '0,x-1': 'x-1' is not a CPU number or a range like 0-3"},
        {"0-", "cpus '0-': '0-' is not a CPU number or a range like 0-3"},
        {"-1", "cpus '-1': '-1' is not a CPU number or a range like 0-3"},
        {"0 1", "cpus '0 1': '0 1' is not a CPU number or a range like 0-3"},
    };
    char text[256], reason[128];
    long machine = machine_cpus();
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(text, sizeof text, "[runtime]\nthreads = 2\ncpus = %s\n", cases[i].cpus);
        expect_file_refusal(state, text, 3, cases[i].reason);
    }
    snprintf(text, sizeof text, "[runtime]\ncpus = 0,%ld\n", machine);
    snprintf(reason, sizeof reason, "cpu %ld does not exist (this machine has %ld)", machine,
             machine);
    expect_file_refusal(state, text, 2, reason);
    snprintf(text, sizeof text, "[runtime]\ncpus = 0-%ld\n", machine + 7);
    snprintf(reason, sizeof reason, "cpu %ld does not exist (this machine has %ld)", machine + 7,
             machine);
    expect_file_refusal(state, text, 2, reason);
}

static void test_unknown_policies_are_refused(void **state) {
    char reason[256];
    snprintf(reason, sizeof reason, "default: unknown placement 'random' %s",
             unknown_placement_reason);
    expect_file_refusal(state, "[placement]\ndefault = random\n", 2, reason);
    expect_file_refusal(state, "[placement]\ndefault = dedicated\n", 2,
                        "default must be round_robin, least_loaded or hash, not 'dedicated'");
    snprintf(reason, sizeof reason, "logger: unknown placement 'dedicate' %s",
             unknown_placement_reason);
    expect_file_refusal(state, "[placement]\n\nlogger = dedicate ; typo\n", 3, reason);
    expect_file_refusal(state, "[placement]\nlogger = dedicated:one\n", 2,
                        "logger: dedicated:K needs a thread number K, not 'one'");
}

static void test_thread_beyond_thread_count_is_refused(void **state) {
    expect_file_refusal(state, "[runtime]\nthreads = 4\n[placement]\ndb = 7\n", 4,
                        "thread 7 does not exist (threads = 4)");
    expect_file_refusal(state, "[runtime]\nthreads = 4\n[placement]\nlog = dedicated:4\n", 4,
                        "thread 4 does not exist (threads = 4)");
}

static void test_two_rules_dedicating_one_thread_are_refused(void **state) {
    char reason[PATH_MAX + 64];
    scratch *dir = *state;
    snprintf(reason, sizeof reason, "thread 2 is already dedicated to 'a' (%s/test%d.ini:4)",
             dir->dir, dir->files + 1);
    expect_file_refusal(state,
                        "[runtime]\nthreads = 4\n[placement]\na = dedicated:2\n"
                        "b = dedicated:2\n",
                        5, reason);
}

static void test_thread_rule_on_a_dedicated_thread_is_refused(void **state) {
    char reason[PATH_MAX + 96];
    scratch *dir = *state;
    snprintf(reason, sizeof reason, "thread 1 is already dedicated to 'log' (%s/test%d.ini:4)",
             dir->dir, dir->files + 1);
    expect_file_refusal(state, "[runtime]\nthreads = 4\n[placement]\nlog = dedicated:1\ndb = 1\n",
                        5, reason);
    snprintf(reason, sizeof reason,
             "thread 1 cannot be dedicated to 'log': 'db' is placed there (%s/test%d.ini:4)",
             dir->dir, dir->files + 1);
    expect_file_refusal(state, "[runtime]\nthreads = 4\n[placement]\ndb = 1\nlog = dedicated:1\n",
                        5, reason);
}

static void test_dedicated_gets_the_highest_free_thread(void **state) {
    static const spool_placement_rule rules[] = {
        {"a", "3"}, {"b", "dedicated"}, {"c", "dedicated:1"}, {"d", "dedicated"}, {"e", "3"}};
    spool_config config = quiet_config();
    runtime_settings s;
    (void)state;
    config.threads = 5;
    config.placement = rules;
    config.placement_count = 5;
    load_ok(&config, &s);
    assert_int_equal(s.rules[1].thread, 4);
    assert_int_equal(s.rules[2].thread, 1);
    assert_int_equal(s.rules[3].thread, 2);
    settings_free(&s);
}

static void test_no_thread_left_for_dedicated_is_refused(void **state) {
    expect_file_refusal(state,
                        "[runtime]\nthreads = 2\n[placement]\na = 0\nb = 1\n"
                        "log = dedicated\n",
                        6,
                        "no thread left for dedicated 'log' (threads = 2, each is taken by a "
                        "thread rule or another dedicated actor)");
}

static void test_dedicated_rules_taking_every_thread_are_refused(void **state) {
    static const char reason[] =
        "dedicated rules would take every thread (threads = 2), leaving none for other actors";
    expect_file_refusal(state,
                        "[runtime]\nthreads = 2\n[placement]\na = dedicated\n"
                        "b = dedicated\n",
                        5, reason);
    expect_file_refusal(state,
                        "[runtime]\nthreads = 2\n[placement]\na = dedicated:0\n"
                        "b = dedicated:1\n",
                        5, reason);
    expect_file_refusal(state, "[runtime]\nthreads = 1\n[placement]\na = dedicated\n", 4,
                        "dedicated rules would take every thread (threads = 1), leaving none for "
                        "other actors");
}

static void test_near_rules_are_checked(void **state) {
    char reason[PATH_MAX + 96];
    scratch *dir = *state;
    expect_file_refusal(state, "[placement]\ncache = near:\n", 2,
                        "cache: 'near:' needs the name of an actor (near:NAME)");
    expect_file_refusal(state, "[placement]\ncache = near:cache\n", 2,
                        "'cache' cannot be placed near itself");
    snprintf(reason, sizeof reason,
             "'cache' cannot be placed near 'log': it has a dedicated thread (%s/test%d.ini:4)",
             dir->dir, dir->files + 1);
    expect_file_refusal(state,
                        "[runtime]\nthreads = 2\n[placement]\nlog = dedicated\n"
                        "cache = near:log\n",
                        5, reason);
}

static void test_dedicated_glob_is_refused(void **state) {
    expect_file_refusal(state, "[placement]\nworker* = dedicated\n", 2,
                        "'worker*': dedicated needs an actor name, not a glob");
}

static void test_environment_errors_name_the_variable(void **state) {
    spool_config config;
    (void)state;
    memset(&config, 0, sizeof config);
    clear_environment();
    setenv("SPOOL_THREADS", "0", 1);
    expect_refusal(&config, "SPOOL_THREADS: threads must be a number from 1 to 256, not '0'");
    clear_environment();
    setenv("SPOOL_CPUS", "3-1", 1);
    expect_refusal(&config, "SPOOL_CPUS: cpus '3-1': range 3-1 is reversed");
    clear_environment();
    setenv("SPOOL_BATCH", "many", 1);
    expect_refusal(&config, "SPOOL_BATCH: batch must be a number from 1 to 65536, not 'many'");
    clear_environment();
}

static void test_config_field_errors_name_the_field(void **state) {
    static const spool_placement_rule rules[] = {{"a", "1"}, {"b", "sideways"}};
    static const spool_placement_rule unnamed[] = {{NULL, "1"}};
    spool_config config = quiet_config();
    char message[256];
    (void)state;
    config.threads = -1;
    expect_refusal(&config, "config.threads: threads must be from 1 to 256, not -1");
    config = quiet_config();
    config.batch = 70000;
    expect_refusal(&config, "config.batch: batch must be from 1 to 65536, not 70000");
    config = quiet_config();
    config.cpus = "0-";
    expect_refusal(&config, "config.cpus: cpus '0-': '0-' is not a CPU number or a range like 0-3");
    config = quiet_config();
    config.placement_default = "near:x";
    expect_refusal(&config,
                   "config.placement_default: default must be round_robin, least_loaded or "
                   "hash, not 'near:x'");
    config = quiet_config();
    config.placement = rules;
    config.placement_count = 2;
    snprintf(message, sizeof message, "config.placement[1]: b: unknown placement 'sideways' %s",
             unknown_placement_reason);
    expect_refusal(&config, message);
    config.placement = unnamed;
    config.placement_count = 1;
    expect_refusal(&config, "config.placement[0]: a placement rule needs an actor name or a glob");
    config.placement = NULL;
    config.placement_count = 3;
    expect_refusal(&config, "config.placement: NULL with placement_count = 3");
    config = quiet_config();
    config.placement = rules;
    config.placement_count = 1;
    config.threads = 1;
    expect_refusal(&config, "config.placement[0]: thread 1 does not exist (threads = 1)");
}

static void test_missing_error_buffer_is_fine(void **state) {
    spool_config config = quiet_config();
    runtime_settings s;
    (void)state;
    config.threads = -1;
    assert_int_equal(settings_load(&config, NULL, &s, NULL, 0), SPOOL_ECONFIG);
    assert_zeroed(&s);
    char err[8];
    assert_int_equal(settings_load(&config, NULL, &s, err, sizeof err), SPOOL_ECONFIG);
    assert_string_equal(err, "config.");
    assert_int_equal(settings_load(&config, NULL, NULL, err, sizeof err), SPOOL_EINVAL);
}

/* ---------------------------------------------------------------------------------------------- */
/* Matching and parsing                                                                           */
/* ---------------------------------------------------------------------------------------------- */

static void test_exact_names_match_before_globs(void **state) {
    static const spool_placement_rule rules[] = {
        {"work*", "hash"}, {"worker1", "1"}, {"w?rker2", "least_loaded"}, {"worker[0-9]", "0"}};
    spool_config config = quiet_config();
    runtime_settings s;
    (void)state;
    config.threads = 2;
    config.placement = rules;
    config.placement_count = 4;
    load_ok(&config, &s);
    assert_ptr_equal(settings_match(&s, "worker1"), &s.rules[1]);
    assert_ptr_equal(settings_match(&s, "worker2"), &s.rules[0]);
    assert_ptr_equal(settings_match(&s, "worker10"), &s.rules[0]);
    assert_true(s.rules[3].is_glob);
    assert_false(s.rules[1].is_glob);
    assert_null(settings_match(&s, "other"));
    assert_null(settings_match(&s, NULL));
    settings_free(&s);

    config.placement = &rules[2];
    config.placement_count = 2;
    load_ok(&config, &s);
    assert_ptr_equal(settings_match(&s, "worker2"), &s.rules[0]);
    assert_ptr_equal(settings_match(&s, "worker7"), &s.rules[1]);
    assert_null(settings_match(&s, "worker"));
    settings_free(&s);
}

static void test_placement_values_parse(void **state) {
    static const struct {
        const char *value;
        placement_kind kind;
        int thread;
        const char *near;
    } cases[] = {
        {"0", PLACE_THREAD, 0, NULL},
        {"12", PLACE_THREAD, 12, NULL},
        {"round_robin", PLACE_ROUND_ROBIN, -1, NULL},
        {"least_loaded", PLACE_LEAST_LOADED, -1, NULL},
        {"hash", PLACE_HASH, -1, NULL},
        {"dedicated", PLACE_DEDICATED, -1, NULL},
        {"dedicated:3", PLACE_DEDICATED, 3, NULL},
        {"near:sqlite", PLACE_NEAR, -1, "sqlite"},
    };
    static const char *const bad[] = {"",      "-1",         "1x",          "99999999999",  "Hash",
                                      "near:", "dedicated:", "dedicated:x", "dedicated:-1", NULL};
    (void)state;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        placement_kind kind = PLACE_NONE;
        int thread = -2;
        const char *near = NULL;
        size_t near_len = 99;
        char err[256] = "untouched";
        assert_int_equal(
            placement_parse(cases[i].value, &kind, &thread, &near, &near_len, err, sizeof err), 0);
        assert_int_equal(kind, cases[i].kind);
        assert_int_equal(thread, cases[i].thread);
        if (cases[i].near) {
            assert_int_equal(near_len, strlen(cases[i].near));
            assert_memory_equal(near, cases[i].near, near_len);
            assert_ptr_equal(near, cases[i].value + 5);
        } else {
            assert_null(near);
            assert_int_equal(near_len, 0);
        }
    }
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        placement_kind kind = PLACE_HASH;
        char err[256] = "";
        assert_int_equal(placement_parse(bad[i], &kind, NULL, NULL, NULL, err, sizeof err),
                         SPOOL_EINVAL);
        assert_int_equal(kind, PLACE_HASH);
        assert_true(err[0] != '\0');
    }
}

static void test_placement_kind_names(void **state) {
    (void)state;
    assert_string_equal(placement_kind_name(PLACE_NONE), "none");
    assert_string_equal(placement_kind_name(PLACE_THREAD), "thread");
    assert_string_equal(placement_kind_name(PLACE_ROUND_ROBIN), "round_robin");
    assert_string_equal(placement_kind_name(PLACE_LEAST_LOADED), "least_loaded");
    assert_string_equal(placement_kind_name(PLACE_HASH), "hash");
    assert_string_equal(placement_kind_name(PLACE_DEDICATED), "dedicated");
    assert_string_equal(placement_kind_name(PLACE_NEAR), "near");
    assert_string_equal(placement_kind_name((placement_kind)99), "unknown");
}

/* ---------------------------------------------------------------------------------------------- */
/* Memory                                                                                         */
/* ---------------------------------------------------------------------------------------------- */

static void test_settings_free_releases_every_byte(void **state) {
    static const spool_placement_rule rules[] = {{"x", "near:y"}, {"z?", "0"}};
    counting *c = calloc(1, sizeof *c);
    spool_allocator allocator = {counting_alloc, counting_free, c};
    spool_config config = busy_config(state, rules, 2);
    runtime_settings s;
    char err[256];
    assert_non_null(c);
    assert_int_equal(settings_load(&config, &allocator, &s, err, sizeof err), 0);
    assert_ptr_equal(s.allocator, &allocator);
    assert_int_equal(s.rule_count, 6);
    assert_true(c->live_bytes > 0);
    settings_free(&s);
    assert_zeroed(&s);
    assert_int_equal(c->live_bytes, 0);
    assert_int_equal(c->live_blocks, 0);
    assert_int_equal(c->bad_frees, 0);
    settings_free(&s);

    config.allocator = &allocator;
    assert_int_equal(settings_load(&config, NULL, &s, err, sizeof err), 0);
    assert_ptr_equal(s.allocator, &allocator);
    settings_free(&s);
    assert_int_equal(c->live_bytes, 0);
    assert_int_equal(c->bad_frees, 0);
    free(c);
}

static void test_failed_load_releases_every_byte(void **state) {
    counting *c = calloc(1, sizeof *c);
    spool_allocator allocator = {counting_alloc, counting_free, c};
    spool_config config = quiet_config();
    runtime_settings s;
    char err[PATH_MAX + 64];
    assert_non_null(c);
    config.config_file = write_ini(state, "[runtime]\nthreads = 2\n[placement]\na = near:b\n"
                                          "c = dedicated\nd = 5\n");
    assert_int_equal(settings_load(&config, &allocator, &s, err, sizeof err), SPOOL_ECONFIG);
    assert_int_equal(c->live_bytes, 0);
    assert_int_equal(c->bad_frees, 0);
    free(c);
}

static void test_every_allocation_failure_is_enomem_and_leaks_nothing(void **state) {
    static const spool_placement_rule rules[] = {{"x", "near:y"}, {"z?", "0"}, {"d", "dedicated"},
                                                 {"a1", "1"},     {"a2", "1"}, {"a3", "1"},
                                                 {"a4", "1"},     {"a5", "1"}, {"a6", "hash"}};
    counting *c = calloc(1, sizeof *c);
    spool_allocator allocator = {counting_alloc, counting_free, c};
    spool_config config = busy_config(state, rules, sizeof rules / sizeof rules[0]);
    runtime_settings s;
    char err[256];
    size_t n;
    assert_non_null(c);
    for (n = 1; n < 1000; n++) {
        memset(c, 0, sizeof *c);
        c->fail_at = n;
        int rc = settings_load(&config, &allocator, &s, err, sizeof err);
        if (rc == 0)
            break;
        assert_int_equal(rc, SPOOL_ENOMEM);
        assert_string_equal(err, "out of memory");
        assert_zeroed(&s);
        assert_int_equal(c->live_bytes, 0);
        assert_int_equal(c->live_blocks, 0);
        assert_int_equal(c->bad_frees, 0);
    }
    assert_true(n > 10); /* the loop went through many allocations before the first success */
    assert_int_equal(s.rule_count, sizeof rules / sizeof rules[0] + 4);
    settings_free(&s);
    assert_int_equal(c->live_bytes, 0);
    assert_int_equal(c->bad_frees, 0);
    free(c);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults_when_nothing_is_set),
        cmocka_unit_test(test_null_config_reads_defaults_and_environment),
        cmocka_unit_test(test_file_values_are_read),
        cmocka_unit_test(test_environment_overrides_file),
        cmocka_unit_test(test_empty_variable_counts_as_unset),
        cmocka_unit_test(test_config_fields_override_environment),
        cmocka_unit_test(test_spool_config_variable_names_the_file),
        cmocka_unit_test(test_ignore_environment_skips_spool_variables),
        cmocka_unit_test(test_brief_example_file_parses),
        cmocka_unit_test(test_config_rules_come_before_file_rules),
        cmocka_unit_test(test_thread_rules_are_checked_against_the_final_thread_count),
        cmocka_unit_test(test_cpu_lists_and_ranges),
        cmocka_unit_test(test_inline_comments_and_indentation_are_ignored),
        cmocka_unit_test(test_missing_file_is_refused),
        cmocka_unit_test(test_unknown_section_is_refused),
        cmocka_unit_test(test_key_outside_a_section_is_refused),
        cmocka_unit_test(test_unknown_runtime_key_is_refused),
        cmocka_unit_test(test_syntax_errors_are_refused),
        cmocka_unit_test(test_duplicate_keys_are_refused),
        cmocka_unit_test(test_duplicate_file_rules_are_refused),
        cmocka_unit_test(test_bad_numbers_are_refused),
        cmocka_unit_test(test_bad_cpu_lists_are_refused),
        cmocka_unit_test(test_unknown_policies_are_refused),
        cmocka_unit_test(test_thread_beyond_thread_count_is_refused),
        cmocka_unit_test(test_two_rules_dedicating_one_thread_are_refused),
        cmocka_unit_test(test_thread_rule_on_a_dedicated_thread_is_refused),
        cmocka_unit_test(test_dedicated_gets_the_highest_free_thread),
        cmocka_unit_test(test_no_thread_left_for_dedicated_is_refused),
        cmocka_unit_test(test_dedicated_rules_taking_every_thread_are_refused),
        cmocka_unit_test(test_near_rules_are_checked),
        cmocka_unit_test(test_dedicated_glob_is_refused),
        cmocka_unit_test(test_environment_errors_name_the_variable),
        cmocka_unit_test(test_config_field_errors_name_the_field),
        cmocka_unit_test(test_missing_error_buffer_is_fine),
        cmocka_unit_test(test_exact_names_match_before_globs),
        cmocka_unit_test(test_placement_values_parse),
        cmocka_unit_test(test_placement_kind_names),
        cmocka_unit_test(test_settings_free_releases_every_byte),
        cmocka_unit_test(test_failed_load_releases_every_byte),
        cmocka_unit_test(test_every_allocation_failure_is_enomem_and_leaks_nothing),
    };
    return cmocka_run_group_tests(tests, make_scratch, remove_scratch);
}
