/*
 * names.c - spool_register / spool_whereis: a name -> id table behind one mutex. Names are looked
 * up when actors find each other, not per message, so a lock is the simple, honest choice; an
 * actor holds at most one name, released when it ends.
 */
#include "actors/actors.h"

#include <string.h>

#define NAME_MAX_BYTES 255

typedef struct name_entry {
    struct name_entry *next;
    char *name;
    spool_id id;
    actor *owner;
} name_entry;

typedef struct name_table {
    pthread_mutex_t lock;
    name_entry **buckets;
    size_t bucket_count; /* power of two */
    size_t count;
} name_table;

static uint64_t name_hash(const char *s) {
    uint64_t h = 1469598103934665603u;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211u;
    return h;
}

int names_create(spool_runtime *rt) {
    name_table *table = memory_calloc(&rt->allocator, sizeof *table);
    if (!table)
        return SPOOL_ENOMEM;
    table->bucket_count = 64;
    table->buckets = memory_calloc(&rt->allocator, sizeof(name_entry *) * table->bucket_count);
    if (!table->buckets) {
        memory_free(&rt->allocator, table, sizeof *table);
        return SPOOL_ENOMEM;
    }
    pthread_mutex_init(&table->lock, NULL);
    rt->names = table;
    return 0;
}

static void entry_free(spool_runtime *rt, name_entry *e) {
    memory_free_string(&rt->allocator, e->name);
    memory_free(&rt->allocator, e, sizeof *e);
}

void names_destroy(spool_runtime *rt) {
    name_table *table = rt->names;
    if (!table)
        return;
    for (size_t i = 0; i < table->bucket_count; i++) {
        while (table->buckets[i]) {
            name_entry *e = table->buckets[i];
            table->buckets[i] = e->next;
            entry_free(rt, e);
        }
    }
    memory_free(&rt->allocator, table->buckets, sizeof(name_entry *) * table->bucket_count);
    pthread_mutex_destroy(&table->lock);
    memory_free(&rt->allocator, table, sizeof *table);
    rt->names = NULL;
}

static name_entry **find_locked(name_table *table, const char *name) {
    name_entry **pp = &table->buckets[name_hash(name) & (table->bucket_count - 1)];
    while (*pp && strcmp((*pp)->name, name) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void grow_locked(spool_runtime *rt, name_table *table) {
    size_t count = table->bucket_count * 2;
    name_entry **buckets = memory_calloc(&rt->allocator, sizeof(name_entry *) * count);
    if (!buckets)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < table->bucket_count; i++) {
        while (table->buckets[i]) {
            name_entry *e = table->buckets[i];
            table->buckets[i] = e->next;
            size_t b = name_hash(e->name) & (count - 1);
            e->next = buckets[b];
            buckets[b] = e;
        }
    }
    memory_free(&rt->allocator, table->buckets, sizeof(name_entry *) * table->bucket_count);
    table->buckets = buckets;
    table->bucket_count = count;
}

static int name_valid(const char *name) { return name && *name && strlen(name) <= NAME_MAX_BYTES; }

/* Registers `name` for actor `a` (whose id is `id`). */
int names_register_actor(spool_runtime *rt, const char *name, actor *a, spool_id id) {
    name_table *table = rt->names;
    name_entry *e = memory_alloc(&rt->allocator, sizeof *e);
    char *copy = memory_strdup(&rt->allocator, name);
    if (!e || !copy) {
        memory_free(&rt->allocator, e, sizeof *e);
        memory_free_string(&rt->allocator, copy);
        return SPOOL_ENOMEM;
    }
    e->name = copy;
    e->id = id;
    e->owner = a;
    pthread_mutex_lock(&table->lock);
    int rc = 0;
    if (*find_locked(table, name) != NULL || a->name != NULL) {
        rc = SPOOL_EEXIST;
    } else if (pr_load_64(&a->id) != id) {
        rc = SPOOL_ENOENT; /* it ended meanwhile */
    } else {
        name_entry **pp = find_locked(table, name);
        e->next = NULL;
        *pp = e;
        a->name = copy;
        if (++table->count > table->bucket_count * 2)
            grow_locked(rt, table);
    }
    pthread_mutex_unlock(&table->lock);
    if (rc != 0)
        entry_free(rt, e);
    return rc;
}

void names_release_actor(spool_runtime *rt, actor *a) {
    name_table *table = rt->names;
    pthread_mutex_lock(&table->lock);
    name_entry *e = NULL;
    if (a->name) {
        name_entry **pp = find_locked(table, a->name);
        e = *pp;
        if (e)
            *pp = e->next;
        a->name = NULL;
        table->count--;
    }
    pthread_mutex_unlock(&table->lock);
    if (e)
        entry_free(rt, e);
}

void names_copy_actor_name(spool_runtime *rt, actor *a, char *out, size_t size) {
    name_table *table = rt->names;
    pthread_mutex_lock(&table->lock);
    size_t n = a->name ? strlen(a->name) : 0;
    if (n >= size)
        n = size - 1;
    if (n)
        memcpy(out, a->name, n);
    out[n] = '\0';
    pthread_mutex_unlock(&table->lock);
}

int spool_register(spool_runtime *rt, const char *name, spool_id id) {
    if (!rt || !name_valid(name))
        return SPOOL_EINVAL;
    actor *a = actor_lookup(rt, id);
    if (!a)
        return SPOOL_ENOENT;
    return names_register_actor(rt, name, a, id);
}

int spool_whereis(spool_runtime *rt, const char *name, spool_id *out) {
    if (!rt || !out || !name_valid(name))
        return SPOOL_EINVAL;
    name_table *table = rt->names;
    pthread_mutex_lock(&table->lock);
    name_entry *e = *find_locked(table, name);
    spool_id id = e ? e->id : SPOOL_ID_NONE;
    pthread_mutex_unlock(&table->lock);
    if (!id)
        return SPOOL_ENOENT;
    *out = id;
    return 0;
}

int spool_unregister(spool_runtime *rt, const char *name) {
    if (!rt || !name_valid(name))
        return SPOOL_EINVAL;
    name_table *table = rt->names;
    pthread_mutex_lock(&table->lock);
    name_entry **pp = find_locked(table, name);
    name_entry *e = *pp;
    if (e) {
        *pp = e->next;
        e->owner->name = NULL;
        table->count--;
    }
    pthread_mutex_unlock(&table->lock);
    if (!e)
        return SPOOL_ENOENT;
    entry_free(rt, e);
    return 0;
}
