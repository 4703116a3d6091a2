/* nodes_consumer.c - a program built against an installed spool with its node layer
 * (spool::nodes): two runtimes in this process made nodes on loopback, b joined to a, and a
 * blocking call from b to an actor of a through the id a exported. */
#include <spool.h>
#include <spool_node.h>

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void echo(spool_ctx *ctx, void *state, const spool_message *msg) {
    (void)state;
    spool_reply(spool_ctx_runtime(ctx), msg, 0, msg->data, msg->size);
}

static const spool_behavior echo_behavior = {"echo", echo, NULL};

static int start(const char *name, const char *join, spool_runtime **rt, spool_node **node) {
    spool_node_config c;
    spool_node_config_init(&c);
    c.name = name;
    c.listen = "tcp://127.0.0.1:0";
    c.insecure = 1;
    c.join = &join;
    c.join_count = join ? 1 : 0;
    char err[256] = "";
    int rc = spool_runtime_create(NULL, rt);
    if (rc == 0)
        rc = spool_runtime_start(*rt);
    if (rc == 0 && (rc = spool_node_create(*rt, &c, node, err, sizeof err)) != 0)
        fprintf(stderr, "nodes_consumer: node %s: %s\n", name, err);
    return rc;
}

int main(void) {
    spool_runtime *a = NULL, *b = NULL;
    spool_node *na = NULL, *nb = NULL;
    spool_id echo_id = 0, seen_from_b = 0;
    spool_remote_id exported;
    spool_response *r = NULL;
    char join[300];
    int rc = start("a", NULL, &a, &na);
    if (rc == 0) {
        snprintf(join, sizeof join, "a@%s", spool_node_endpoint(na));
        rc = start("b", join, &b, &nb);
    }
    if (rc == 0)
        rc = spool_spawn(a, &echo_behavior, NULL, NULL, &echo_id);
    if (rc == 0)
        rc = spool_id_export(a, echo_id, &exported);
    if (rc == 0)
        rc = spool_id_import(b, &exported, &seen_from_b);
    for (int i = 0; rc == 0 && i < 500; i++) { /* b is a member of a within 5 s */
        char names[4][SPOOL_NODE_NAME_MAX + 1];
        size_t n = 0;
        if (spool_node_members(b, names, 4, &n) == 0 && n == 1 && strcmp(names[0], "a") == 0)
            break;
        usleep(10000);
    }
    if (rc == 0)
        rc = spool_call_wait(b, seen_from_b, 0, "across", 7, 5000, &r);
    int ok = rc == 0 && spool_response_message(r)->size == 7 &&
             memcmp(spool_response_message(r)->data, "across", 7) == 0;
    printf("nodes_consumer: call from node b to node a: %s\n", ok ? "ok" : spool_strerror(rc));
    spool_response_destroy(&r);
    spool_node_destroy(&nb);
    spool_node_destroy(&na);
    spool_runtime_destroy(&b);
    spool_runtime_destroy(&a);
    return ok ? 0 : 1;
}
