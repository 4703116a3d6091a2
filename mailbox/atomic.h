/*
 * atomic.h - the atomic operations spool uses, each with its memory order in its name.
 *
 * Production builds use concurrencykit's ck_pr (inline assembly on x86-64). ThreadSanitizer cannot
 * see inside inline assembly, so a SPOOL_TSAN build maps the same operations onto the compiler's
 * __atomic builtins with the same orders: TSan then checks the real happens-before edges of the
 * algorithms. Both compile to the same instructions on x86-64 (mov / lock xadd / xchg / lock
 * cmpxchg / mfence).
 */
#ifndef SPOOL_ATOMIC_H
#define SPOOL_ATOMIC_H

#include <stdbool.h>
#include <stdint.h>

/* Producer-written and consumer-written fields are kept apart by this much. */
#define CACHE_LINE 64
#define CACHE_ALIGNED __attribute__((aligned(CACHE_LINE)))

#if defined(SPOOL_TSAN)

/* GCC's ThreadSanitizer does not model fences. Every non-relaxed operation is seq_cst here instead,
 * which gives the two Dekker hand-shakes (sleeper/waker, stop/foreign sender) the same guarantee
 * the fence gives in production: of two threads that each store then load, one sees the other's
 * store. */
#define SEQ __ATOMIC_SEQ_CST
#define pr_load_ptr(p) __atomic_load_n((p), SEQ)
#define pr_load_ptr_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define pr_store_ptr(p, v) __atomic_store_n((p), (v), SEQ)
#define pr_store_ptr_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define pr_fas_ptr(p, v) __atomic_exchange_n((p), (v), SEQ)
#define pr_cas_ptr(p, expected_p, desired)                                                         \
    __atomic_compare_exchange_n((p), (expected_p), (desired), false, SEQ, SEQ)
#define pr_load_64(p) __atomic_load_n((p), SEQ)
#define pr_load_64_relaxed(p) __atomic_load_n((p), __ATOMIC_RELAXED)
#define pr_store_64(p, v) __atomic_store_n((p), (v), SEQ)
#define pr_store_64_relaxed(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)
#define pr_faa_64(p, d) __atomic_fetch_add((p), (d), SEQ)
#define pr_cas_64(p, expected_p, desired)                                                          \
    __atomic_compare_exchange_n((p), (expected_p), (desired), false, SEQ, SEQ)
#define pr_load_int(p) __atomic_load_n((p), SEQ)
#define pr_store_int(p, v) __atomic_store_n((p), (v), SEQ)
#define pr_load_8(p) __atomic_load_n((p), SEQ)
#define pr_store_8(p, v) __atomic_store_n((p), (v), SEQ)
#define pr_faa_int(p, d) __atomic_fetch_add((p), (d), SEQ)
#define pr_cas_int(p, expected_p, desired)                                                         \
    __atomic_compare_exchange_n((p), (expected_p), (desired), false, SEQ, SEQ)
#define pr_fence_seq_cst() ((void)0)
#define pr_fence_atomic_load() ((void)0)
#define pr_stall() ((void)0)

/* Sequence lock, the same protocol as ck_sequence: the writer makes the count odd, writes, makes it
 * even; a reader retries while it was odd or changed. Read-modify-writes order the data here. */
typedef struct seqlock {
    unsigned sequence;
} seqlock;
#define seq_write_begin(s) ((void)__atomic_fetch_add(&(s)->sequence, 1, SEQ))
#define seq_write_end(s) ((void)__atomic_fetch_add(&(s)->sequence, 1, SEQ))
static inline unsigned seq_read_begin(seqlock *s) {
    unsigned v;
    while ((v = __atomic_load_n(&s->sequence, SEQ)) & 1) {
    }
    return v;
}
static inline bool seq_read_retry(seqlock *s, unsigned v) {
    return __atomic_fetch_add(&s->sequence, 0, SEQ) != v;
}

#else

#include <ck_pr.h>

/* ck_pr loads and stores are plain movs, which are acquire / release on x86-64 (TSO); the
 * compiler barrier that orders them is the "memory" clobber in ck's assembly. */
#define pr_load_ptr(p) ck_pr_load_ptr(p)
#define pr_load_ptr_relaxed(p) ck_pr_load_ptr(p)
#define pr_store_ptr(p, v) ck_pr_store_ptr((p), (v))
#define pr_store_ptr_relaxed(p, v) ck_pr_store_ptr((p), (v))
#define pr_fas_ptr(p, v) ck_pr_fas_ptr((p), (v))
#define pr_cas_ptr(p, expected_p, desired)                                                         \
    ck_pr_cas_ptr_value((p), *(expected_p), (desired), (void *)(expected_p))
#define pr_load_64(p) ck_pr_load_64(p)
#define pr_load_64_relaxed(p) ck_pr_load_64(p)
#define pr_store_64(p, v) ck_pr_store_64((p), (v))
#define pr_store_64_relaxed(p, v) ck_pr_store_64((p), (v))
#define pr_faa_64(p, d) ck_pr_faa_64((p), (d))
#define pr_cas_64(p, expected_p, desired)                                                          \
    ck_pr_cas_64_value((p), *(expected_p), (desired), (expected_p))
#define pr_load_int(p) ck_pr_load_int(p)
#define pr_store_int(p, v) ck_pr_store_int((p), (v))
#define pr_load_8(p) ck_pr_load_8(p)
#define pr_store_8(p, v) ck_pr_store_8((p), (v))
#define pr_faa_int(p, d) ck_pr_faa_int((p), (d))
#define pr_cas_int(p, expected_p, desired)                                                         \
    ck_pr_cas_int_value((p), *(expected_p), (desired), (expected_p))
/* Store then load of another location: a full fence (mfence). */
#define pr_fence_seq_cst() ck_pr_fence_memory()
/* An atomic read-modify-write then a load: already ordered by the lock prefix on x86-64. */
#define pr_fence_atomic_load() ck_pr_fence_atomic_load()
#define pr_stall() ck_pr_stall()

/* Sequence lock: ck_sequence (store + store fence for the writer, load fences for readers). */
#include <ck_sequence.h>
typedef ck_sequence_t seqlock;
#define seq_write_begin(s) ck_sequence_write_begin(s)
#define seq_write_end(s) ck_sequence_write_end(s)
#define seq_read_begin(s) ck_sequence_read_begin(s)
#define seq_read_retry(s, v) ck_sequence_read_retry((s), (v))

#endif

#endif
