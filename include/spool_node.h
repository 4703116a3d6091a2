/*
 * spool_node.h - making a runtime a node: a process that other spool processes, on this machine or
 * others, reach over ZeroMQ. Once a node runs, ids of actors on other nodes work with spool_send,
 * spool_call, spool_reply, spool_monitor and spool_actor_stop like local ones, and spool.h's node
 * functions (spool_node_members, spool_node_monitor, spool_node_whereis, spool_node_peers, ids'
 * export and import) answer. docs/nodes.md has the promise (at most once, FIFO per pair of
 * actors, every loss told), the failure semantics and how to run nodes on several machines.
 *
 * In libspool_nodes (CMake: spool::nodes), which links libzmq; the runtime itself does not.
 *
 * Conventions as in spool.h: 0 or a negative SPOOL_E* code, and a line saying why in `err`
 * (NULL-safe) for the calls that take one.
 */
#ifndef SPOOL_NODE_H
#define SPOOL_NODE_H

#include "spool.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A node's settings: the keys of a config file's [node] section (spool_node_config_load), of
 * `spool run`'s flags (--node, --listen, --join, --keys, --insecure) and of this struct are the
 * same:
 *   name          this node's name: 1..63 of [A-Za-z0-9_.-], not starting with '.' or '-'
 *   listen        where it listens: "tcp://HOST:PORT" (PORT 0 or *: any free port)
 *   join          "NAME@tcp://HOST:PORT" of a member (several: one per line, or a list
 *                 separated by commas or spaces); joining one member is enough to meet them all
 *   keys          CURVE: a directory with NAME.key (secret, 0600) and NAME.pub from
 *                 `spool keygen DIR --name NAME`; every *.pub there is a node allowed in, each
 *                 speaking only for the name of its file
 *   insecure      true: plain connections, only on loopback (development)
 *   cluster       nodes of different clusters never talk (default "spool")
 *   heartbeat_ms  every so often a heartbeat goes to each peer (default 1000)
 *   down_after_ms a peer silent this long is down (default 5000; above heartbeat_ms)
 *   max_message   bytes of one message (default 64 MiB); larger sends fail with SPOOL_EMSGSIZE
 *   queue_bytes   bound of each peer's send queue (default 128 MiB, at least max_message);
 *                 sends beyond it fail with SPOOL_EOVERLOAD
 * Exactly one of keys and insecure; a node refuses to listen beyond loopback without keys.
 */
typedef struct spool_node_config {
    const char *name;
    const char *listen;
    const char *const *join; /* join_count entries */
    size_t join_count;
    const char *keys;
    int insecure;
    const char *cluster;    /* NULL: "spool" */
    unsigned heartbeat_ms;  /* 0: default */
    unsigned down_after_ms; /* 0: default */
    size_t max_message;     /* 0: default */
    size_t queue_bytes;     /* 0: default */
    void *owned;            /* spool_node_config_load's strings; freed by _clear */
} spool_node_config;

/* Zeroes `config` (every setting at its default; no name: not a node). NULL-safe. */
SPOOL_API void spool_node_config_init(spool_node_config *config);

/*
 * Reads the [node] section of an INI file into `config` (the file's other sections are not read
 * here). Keys set in the file replace the config's; joins add to them. The strings belong to the
 * config until spool_node_config_clear. Errors: SPOOL_EINVAL (NULL), SPOOL_ENOENT (no such
 * file), SPOOL_ECONFIG ("path:line: why": an unknown key, a bad value), SPOOL_ENOMEM.
 */
SPOOL_API int spool_node_config_load(spool_node_config *config, const char *path, char *err,
                                     size_t err_size);

/* Frees what spool_node_config_load kept and zeroes the config. NULL-safe. */
SPOOL_API void spool_node_config_clear(spool_node_config *config);

typedef struct spool_node spool_node;

/*
 * Makes `rt` a node: loads the keys, starts the node's net thread (one per node; it owns every
 * socket), binds `listen`, joins the members given and returns without waiting for them (a peer
 * coming up is a SPOOL_MSG_NODEUP to spool_node_monitor's watchers). One node per runtime. Any
 * thread outside the runtime. Errors: SPOOL_EINVAL (a bad setting, no keys and not insecure,
 * insecure beyond loopback), SPOOL_ENOENT / SPOOL_ECONFIG (keys: missing, readable by others,
 * mismatched), SPOOL_ESYSTEM (the address is taken), SPOOL_ESTATE (rt is a node already),
 * SPOOL_ENOMEM.
 */
SPOOL_API int spool_node_create(spool_runtime *rt, const spool_node_config *config,
                                spool_node **out, char *err, size_t err_size);

/* The endpoint the node listens on, with the port it got ("tcp://127.0.0.1:40123"). */
SPOOL_API const char *spool_node_endpoint(const spool_node *node);

/* Joins one more member ("NAME@tcp://HOST:PORT"); returns at once. Errors: SPOOL_EINVAL,
 * SPOOL_ENOENT (CURVE: NAME has no key in the allowlist), SPOOL_EFULL, SPOOL_ESTOPPED. */
SPOOL_API int spool_node_join(spool_node *node, const char *member, char *err, size_t err_size);

/*
 * Leaves the cluster: every peer's monitors here fire SPOOL_EXIT_NOCONNECTION, node monitors get
 * NODEDOWN "shutdown", messages still queued for peers become SPOOL_DEAD_SHUTDOWN dead letters,
 * each peer gets a GOODBYE (it sees this node down with "goodbye"); returns within about a second
 * even when a peer is frozen. Call it before spool_runtime_stop. Sets *node to NULL; NULL-safe.
 */
SPOOL_API void spool_node_destroy(spool_node **node);

#ifdef __cplusplus
}
#endif

#endif /* SPOOL_NODE_H */
