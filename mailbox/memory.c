/*
 * memory.c - the default allocator and string helpers over a spool_allocator.
 */
#include "memory.h"

#include <stdlib.h>

static void *default_alloc(void *user, size_t size) {
    (void)user;
    return malloc(size);
}

static void default_free(void *user, void *ptr, size_t size) {
    (void)user;
    (void)size;
    free(ptr);
}

const spool_allocator memory_default_allocator = {default_alloc, default_free, NULL};

char *memory_strdup(const spool_allocator *a, const char *s) {
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    char *copy = memory_alloc(a, n);
    if (copy)
        memcpy(copy, s, n);
    return copy;
}

void memory_free_string(const spool_allocator *a, char *s) {
    if (s)
        memory_free(a, s, strlen(s) + 1);
}
