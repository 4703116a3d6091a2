/*
 * scratch.h - a temporary directory tree for tests that write files (keys, sockets): removed
 * whole at the end, whatever the test left in it. Header-only: each test program takes a copy.
 */
#ifndef SPOOL_TEST_SCRATCH_H
#define SPOOL_TEST_SCRATCH_H

#include <dirent.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Removes `path`: a file, or a directory and everything under it. */
static inline void remove_tree(const char *path) {
    DIR *dir = opendir(path);
    if (dir != NULL) {
        struct dirent *entry;
        char child[PATH_MAX];
        while ((entry = readdir(dir)) != NULL) {
            if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
                continue;
            int n = snprintf(child, sizeof child, "%s/%s", path, entry->d_name);
            if (n > 0 && (size_t)n < sizeof child) /* a path too long to name is left alone */
                remove_tree(child);
        }
        closedir(dir);
        rmdir(path);
    } else {
        unlink(path);
    }
}

#endif
