/*
 * spool_admin.h - looking at a running spool from outside: the metrics snapshot as JSON or as
 * Prometheus text, and an admin endpoint over ZeroMQ that answers those (and the actor list and the
 * placement in force) to `spool stats` and `spool top`. Link with spool::admin (libspool_admin).
 *
 * Protocol: a ZeroMQ REP socket; each request is one frame of text, each reply one frame:
 *   "metrics" or "metrics json"  -> the snapshot as JSON (see docs/metrics.md); from the endpoint
 *                                   it also has "node" ({"name": ...}, null when the process is
 *                                   not a node) and "peers" (one object per peer node: state,
 *                                   messages and bytes in and out, send queue, heartbeat round
 *                                   trip, dead letters by reason; [] when not a node)
 *   "metrics prometheus"         -> the same in the Prometheus text exposition format 0.0.4
 *                                   (the spool_node_peer_* families for the peers)
 *   "actors"                     -> JSON: [{"id":"...","name":...,"behavior":...,"thread":N,
 *                                   "depth":N}]
 *   "placement"                  -> JSON: {"threads":N,"batch":N,"default":"...","cpus":[...],
 *                                   "rules":[{"pattern":...,"policy":...,"thread":N,"near":...,
 *                                   "source":...}]}
 * Anything else gets a reply that starts with "error: " and says what is understood. A request the
 * endpoint cannot parse never affects the runtime. A frame over 64 KiB is refused by ZeroMQ itself,
 * which drops that client's connection without a reply (the endpoint keeps serving the others).
 * The JSON shapes are described in docs/metrics.md.
 */
#ifndef SPOOL_ADMIN_H
#define SPOOL_ADMIN_H

#include "spool.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct spool_admin spool_admin; /* opaque: one admin endpoint */

/*
 * Binds `endpoint` ("ipc:///tmp/spool.sock", "tcp://127.0.0.1:5555") and serves it from a thread of
 * its own (not a scheduler thread: it reads snapshots and never slows the runtime down). The
 * runtime must outlive the endpoint. Any thread outside the runtime. Errors: SPOOL_EINVAL (NULL or
 * empty endpoint), SPOOL_ESYSTEM (ZeroMQ could not bind: the endpoint is malformed or in use),
 * SPOOL_ENOMEM.
 */
SPOOL_API int spool_admin_start(spool_runtime *rt, const char *endpoint, spool_admin **out);

/* Stops the endpoint, joins its thread, frees it and sets *admin to NULL. NULL-safe. */
SPOOL_API void spool_admin_stop(spool_admin **admin);

/*
 * The snapshot as JSON / as Prometheus text, NUL-terminated, allocated with malloc: free() it.
 * Errors: SPOOL_EINVAL, SPOOL_ENOMEM.
 */
SPOOL_API int spool_metrics_json(const spool_metrics *metrics, char **out);
SPOOL_API int spool_metrics_prometheus(const spool_metrics *metrics, char **out);

#ifdef __cplusplus
}
#endif

#endif
