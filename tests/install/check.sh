#!/usr/bin/env bash
# Installs the build into a scratch prefix, then builds and runs a consumer three ways: CMake's
# find_package, pkg-config against the shared library, and pkg-config --static against libspool.a;
# a Lua host through find_package (spool::lua) that pins a C module of its own; and two nodes in
# one process through find_package (spool::nodes) calling across.
set -euo pipefail
build=$1
here=$(cd "$(dirname "$0")" && pwd)
scratch=$(mktemp -d)
trap 'rm -rf "$scratch"' EXIT
cmake --install "$build" --prefix "$scratch/prefix" >/dev/null
libdir=$(dirname "$(find "$scratch/prefix" -name spool.pc)")/..
export PKG_CONFIG_PATH="$libdir/pkgconfig"
export LD_LIBRARY_PATH="$libdir"

cmake -S "$here" -B "$scratch/cmake" -DCMAKE_PREFIX_PATH="$scratch/prefix" >/dev/null
cmake --build "$scratch/cmake" >/dev/null
"$scratch/cmake/consumer"
"$scratch/cmake/lua_consumer" "$here/lua_consumer.lua"
"$scratch/cmake/nodes_consumer"

cc -std=c11 "$here/consumer.c" $(pkg-config --cflags --libs spool) -o "$scratch/shared"
"$scratch/shared"

cc -std=c11 "$here/consumer.c" $(pkg-config --cflags spool) "$libdir/libspool.a" \
    $(pkg-config --static --libs spool | sed 's/-lspool//') -o "$scratch/static"
"$scratch/static"
echo "install: find_package (spool::spool, spool::lua, spool::nodes), pkg-config and static linking all work"
