/*
 * memory_host.c - runs a Lua test script with a memory limit per interpreter
 * (spool_lua_config.memory_limit = 64 MiB), which `spool run` does not set.
 *   memory_host SCRIPT.lua
 */
#include <spool.h>
#include <spool_lua.h>

#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
    if (argc != 2)
        return 2;
    spool_config config;
    spool_config_init(&config);
    config.threads = 2;
    spool_runtime *rt = NULL;
    spool_lua *lua = NULL;
    spool_lua_config lua_config;
    spool_lua_config_init(&lua_config);
    lua_config.memory_limit = (size_t)64 << 20;
    char path[4096];
    const char *slash = strrchr(argv[1], '/');
    snprintf(path, sizeof path, "%.*s/?.lua", slash ? (int)(slash - argv[1]) : 1,
             slash ? argv[1] : ".");
    lua_config.path = path;
    int status = 1;
    char error[8192] = "";
    int rc = spool_runtime_create(&config, &rt);
    if (rc == 0)
        rc = spool_lua_create(rt, &lua_config, &lua);
    if (rc == 0)
        rc = spool_lua_run(lua, argv[1], NULL, 0, &status, error, sizeof error);
    if (error[0])
        fprintf(stderr, "%s\n", error);
    spool_lua_destroy(&lua);
    spool_runtime_destroy(&rt);
    if (rc != 0)
        fprintf(stderr, "memory_host: %s\n", spool_strerror(rc));
    return rc == 0 ? status : 1;
}
