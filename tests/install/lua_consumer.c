/* lua_consumer.c - a host built against an installed spool with its Lua layer (spool::lua): it
 * registers a C module of its own and runs a script that pins it and calls it. */
#include <spool.h>
#include <spool_lua.h>

#include <lauxlib.h>
#include <lua.h>
#include <stdio.h>

static int greet(lua_State *L) {
    lua_pushfstring(L, "hello %s", luaL_checkstring(L, 1));
    return 1;
}

static int luaopen_greeter(lua_State *L) {
    lua_newtable(L);
    lua_pushcfunction(L, greet);
    lua_setfield(L, -2, "hello");
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: lua_consumer SCRIPT.lua\n");
        return 2;
    }
    spool_config config;
    spool_config_init(&config);
    config.threads = 2;
    config.ignore_environment = 1;
    spool_runtime *rt = NULL;
    spool_lua *lua = NULL;
    int status = 1;
    char error[4096];
    int rc = spool_runtime_create(&config, &rt);
    if (rc == 0)
        rc = spool_lua_create(rt, NULL, &lua);
    if (rc == 0)
        rc = spool_lua_preload(lua, "greeter", luaopen_greeter);
    if (rc == 0)
        rc = spool_lua_run(lua, argv[1], NULL, 0, &status, error, sizeof error);
    if (rc == 0 && error[0])
        fprintf(stderr, "%s\n", error);
    spool_lua_destroy(&lua);
    spool_runtime_destroy(&rt);
    printf("lua consumer: %s\n", rc != 0 ? spool_strerror(rc) : status == 0 ? "OK" : "FAILED");
    return rc == 0 && status == 0 ? 0 : 1;
}
