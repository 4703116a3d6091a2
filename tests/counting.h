/*
 * counting.h - a spool_allocator for single-threaded tests of allocation paths: it counts every
 * allocation, can fail the Nth, remembers each live block with its size (so a free with the wrong
 * size is caught, as is one of a block it never gave) and the bytes still out. Header-only.
 */
#ifndef SPOOL_TEST_COUNTING_H
#define SPOOL_TEST_COUNTING_H

#include <stdlib.h>

#ifndef COUNTING_MAX_BLOCKS
#define COUNTING_MAX_BLOCKS 512
#endif

typedef struct counting {
    size_t allocations;
    size_t fail_at; /* 1-based; 0 = never fail */
    size_t live_bytes;
    size_t live_blocks;
    size_t bad_frees; /* a wrong size, or a block it never gave */
    struct {
        void *ptr;
        size_t size;
    } blocks[COUNTING_MAX_BLOCKS];
} counting;

static inline void *counting_alloc(void *user, size_t size) {
    counting *c = user;
    c->allocations++;
    if ((c->fail_at && c->allocations == c->fail_at) || c->live_blocks == COUNTING_MAX_BLOCKS)
        return NULL;
    void *ptr = malloc(size ? size : 1);
    if (!ptr)
        return NULL;
    c->blocks[c->live_blocks].ptr = ptr;
    c->blocks[c->live_blocks].size = size;
    c->live_blocks++;
    c->live_bytes += size;
    return ptr;
}

static inline void counting_free(void *user, void *ptr, size_t size) {
    counting *c = user;
    for (size_t i = 0; i < c->live_blocks; i++) {
        if (c->blocks[i].ptr != ptr)
            continue;
        if (c->blocks[i].size != size)
            c->bad_frees++;
        c->live_bytes -= c->blocks[i].size;
        c->blocks[i] = c->blocks[--c->live_blocks];
        free(ptr);
        return;
    }
    c->bad_frees++;
}

#endif
