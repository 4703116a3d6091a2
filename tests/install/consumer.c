/* consumer.c - a program built against an installed spool: one actor, one blocking call. */
#include <spool.h>

#include <stdio.h>
#include <string.h>

static void echo(spool_ctx *ctx, void *state, const spool_message *msg) {
    (void)state;
    spool_reply(spool_ctx_runtime(ctx), msg, 0, msg->data, msg->size);
}

static const spool_behavior echo_behavior = {"echo", echo, NULL};

int main(void) {
    spool_runtime *rt = NULL;
    spool_id id;
    spool_response *r = NULL;
    int rc = spool_runtime_create(NULL, &rt);
    if (rc == 0)
        rc = spool_spawn(rt, &echo_behavior, NULL, NULL, &id);
    if (rc == 0)
        rc = spool_runtime_start(rt);
    if (rc == 0)
        rc = spool_call_wait(rt, id, 0, "installed", 9, 5000, &r);
    if (rc == 0 && memcmp(spool_response_message(r)->data, "installed", 9) != 0)
        rc = SPOOL_EINVAL;
    spool_response_destroy(&r);
    spool_runtime_destroy(&rt);
    printf("consumer: %s\n", rc == 0 ? "OK" : spool_strerror(rc));
    return rc == 0 ? 0 : 1;
}
