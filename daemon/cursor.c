/* cursor.c — where a polled source has got to (an IMAP mailbox's
 * UIDVALIDITY and last UID; a social API's since_id), kept in Redis under
 * <prefix>cursor:<name> so a restart resumes exactly there. Connectors
 * never talk to Redis; they read and advance their cursor through these
 * two calls, and advance it only after omr_ingest() confirmed the batch.
 * Loop thread only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core_priv.h"
#include "omniroute/core.h"

struct cursor_op {
        omr_cursor_get_fn got;
        omr_cursor_set_fn set;
        void *arg;
};

static char *cursor_key(const struct omr_core *core, const char *name)
{
        char *key = NULL;
        if (asprintf(&key, "%scursor:%s", core->conf->redis.prefix, name) < 0)
                return NULL;
        return key;
}

static void on_reply(const redisReply *r, const char *error, void *arg)
{
        struct cursor_op *op = arg;
        bool ok = error == NULL && r && r->type != REDIS_REPLY_ERROR;
        if (op->got)
                op->got(ok, ok && r->type == REDIS_REPLY_STRING ? r->str : NULL, op->arg);
        else
                op->set(ok, op->arg);
        free(op);
}

/* GET or SET of the cursor `name`; op is freed here on failure. */
static int send_op(struct omr_core *core, struct cursor_op *op, const char *name, const char *value)
{
        char *key = cursor_key(core, name);
        if (op == NULL || key == NULL) {
                free(op);
                free(key);
                return -ENOMEM;
        }
        const char *argv[] = {value ? "SET" : "GET", key, value};
        int rc = core->store
                         ? omr_store_command(core->store, on_reply, op, value ? 3 : 2, argv, NULL)
                         : -ENOTCONN;
        if (rc != 0)
                free(op);
        free(key);
        return rc;
}

int omr_cursor_get(struct omr_core *core, const char *name, omr_cursor_get_fn done, void *arg)
{
        struct cursor_op *op = calloc(1, sizeof(*op));
        if (op) {
                op->got = done;
                op->arg = arg;
        }
        return send_op(core, op, name, NULL);
}

int omr_cursor_set(struct omr_core *core, const char *name, const char *value,
                   omr_cursor_set_fn done, void *arg)
{
        struct cursor_op *op = calloc(1, sizeof(*op));
        if (op) {
                op->set = done;
                op->arg = arg;
        }
        return send_op(core, op, name, value);
}
