/*
 * memory.h - the one door for memory: every allocation in spool goes through the runtime's
 * spool_allocator (malloc/free when the user gave none), so tests can count and fail allocations.
 */
#ifndef SPOOL_MEMORY_H
#define SPOOL_MEMORY_H

#include "spool.h"

#include <stddef.h>
#include <string.h>

/* The allocator used when the user gives none: malloc/free. */
extern const spool_allocator memory_default_allocator;

static inline void *memory_alloc(const spool_allocator *a, size_t size) {
    return a->alloc(a->user, size);
}

static inline void *memory_calloc(const spool_allocator *a, size_t size) {
    void *p = a->alloc(a->user, size);
    if (p)
        memset(p, 0, size);
    return p;
}

static inline void memory_free(const spool_allocator *a, void *ptr, size_t size) {
    if (ptr)
        a->free(a->user, ptr, size);
}

/* A copy of a NUL-terminated string; free it with memory_free_string. NULL on NULL or no memory. */
char *memory_strdup(const spool_allocator *a, const char *s);
void memory_free_string(const spool_allocator *a, char *s);

#endif
