/*
 * embed.c - the smallest C host: a runtime, its Lua layer, one C module of the host's own
 * ("greeter") and a script that pins it (docs/lua/embed.lua). See docs/lua.md, "From C".
 * examples/host_module.c is the complete example (built with the tree).
 */
#include <spool.h>
#include <spool_lua.h>

#include <lauxlib.h>
#include <stdio.h>

static int greeter_hello(lua_State *L) { /* greeter.hello(name) -> "hello, NAME" */
    lua_pushfstring(L, "hello, %s", luaL_checkstring(L, 1));
    return 1;
}

static int luaopen_greeter(lua_State *L) {
    static const luaL_Reg functions[] = {{"hello", greeter_hello}, {NULL, NULL}};
    luaL_newlib(L, functions);
    return 1;
}

int main(int argc, char **argv) {
    const char *script = argc > 1 ? argv[1] : "docs/lua/embed.lua";
    spool_config config;
    spool_config_init(&config);
    config.threads = 2;
    spool_runtime *rt = NULL;
    int rc = spool_runtime_create(&config, &rt);
    if (rc != 0)
        return fprintf(stderr, "spool_runtime_create: %s\n", spool_strerror(rc)), 1;

    spool_lua_config lua_config;
    spool_lua_config_init(&lua_config);
    lua_config.path = "docs/lua/?.lua"; /* prepended to package.path */
    spool_lua *lua = NULL;
    if ((rc = spool_lua_create(rt, &lua_config, &lua)) == 0)
        rc = spool_lua_preload(lua, "greeter", luaopen_greeter); /* before any Lua actor */

    int status = 1;
    char error[4096] = "";
    if (rc == 0) /* starts the runtime, runs the script as the main actor, waits, stops */
        rc = spool_lua_run(lua, script, NULL, 0, &status, error, sizeof error);
    if (rc != 0)
        fprintf(stderr, "embed: %s\n", spool_strerror(rc));
    else if (error[0])
        fprintf(stderr, "embed: %s\n", error);

    spool_lua_destroy(&lua); /* before the runtime */
    spool_runtime_destroy(&rt);
    return rc != 0 ? 1 : status;
}
