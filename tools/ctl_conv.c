/* ctl_conv.c — omniroutectl's conversation commands: next (claim), show,
 * accept, decline, reply, resolve, transfer, all as --agent on
 * /v1/agents/{id}/claim and /v1/conversations/{id}/... */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "ctl.h"

#define REPLY_MAX     (64 * 1024) /* from stdin */
#define REPLY_RETRY_S 1

/* The conversation and its last messages (GET /v1/conversations/{id}). */
static int show_conversation(struct ctl *c, const char *conv, bool unanswered_only)
{
        char *path = ctl_path("/v1/conversations/", conv, "");
        struct ctl_response res;
        int rc = path ? ctl_call(c, "GET", path, NULL, &res) : CTL_ERROR;
        free(path);
        if (rc != CTL_OK)
                return rc;
        if (c->json) {
                ctl_print_json(res.json);
        } else {
                if (!unanswered_only)
                        ctl_print_conversation(json_object_get(res.json, "conversation"), NULL);
                ctl_print_messages(json_object_get(res.json, "messages"), unanswered_only);
        }
        ctl_response_clear(&res);
        return CTL_OK;
}

int ctl_cmd_show(struct ctl *c, int argc, char **argv)
{
        int rc = ctl_args(argv[0], argc, argv, 1, "CONV");
        return rc == CTL_OK ? show_conversation(c, argv[optind], false) : rc;
}

int ctl_cmd_next(struct ctl *c, int argc, char **argv)
{
        int rc = ctl_args(argv[0], argc, argv, 0, "");
        if (rc != CTL_OK)
                return rc;
        char *path = ctl_path("/v1/agents/", c->agent, "/claim");
        json_t *empty = json_object();
        struct ctl_response res;
        rc = path && empty ? ctl_call(c, "POST", path, empty, &res) : CTL_ERROR;
        free(path);
        json_decref(empty);
        if (rc != CTL_OK)
                return rc;
        if (res.status == 204) {
                ctl_response_clear(&res);
                fputs("omniroutectl: nothing to claim\n", stderr);
                return CTL_NOTHING;
        }
        if (c->json) {
                ctl_print_json(res.json);
                ctl_response_clear(&res);
                return CTL_OK;
        }
        json_t *conv = json_object_get(res.json, "conversation");
        ctl_print_conversation(conv, json_string_value(json_object_get(res.json, "via")));
        const char *id = json_string_value(json_object_get(conv, "id"));
        /* The claim is made: a failure to fetch the messages is reported
         * but does not turn it into a failed command. */
        if (id)
                show_conversation(c, id, true);
        ctl_response_clear(&res);
        return CTL_OK;
}

/* POST /v1/conversations/{conv}/{action} with body (agent_id added);
 * says "<done> CONV<what>" on success. */
static int conv_action(struct ctl *c, const char *conv, const char *action, json_t *body,
                       const char *done, const char *what)
{
        char suffix[32];
        snprintf(suffix, sizeof(suffix), "/%s", action);
        char *full = ctl_path("/v1/conversations/", conv, suffix);
        struct ctl_response res;
        int rc = CTL_ERROR;
        if (full && json_object_set_new(body, "agent_id", json_string(c->agent)) == 0)
                rc = ctl_call(c, "POST", full, body, &res);
        else
                fputs("omniroutectl: --agent is not valid UTF-8\n", stderr);
        free(full);
        if (rc != CTL_OK)
                return rc;
        if (c->json) {
                ctl_print_json(res.json);
        } else {
                printf("%s ", done);
                ctl_put_safe(stdout, conv);
                ctl_put_safe(stdout, what);
                fputc('\n', stdout);
        }
        ctl_response_clear(&res);
        return CTL_OK;
}

int ctl_cmd_accept(struct ctl *c, int argc, char **argv)
{
        int rc = ctl_args(argv[0], argc, argv, 1, "CONV");
        if (rc != CTL_OK)
                return rc;
        json_t *body = json_object();
        rc = body ? conv_action(c, argv[optind], "accept", body, "accepted", "") : CTL_ERROR;
        json_decref(body);
        return rc;
}

/* decline / resolve / transfer: --reason R, and transfer's --queue / --to. */
static int conv_with_reason(struct ctl *c, int argc, char **argv, const char *action,
                            const char *done)
{
        static const struct option transfer_opts[] = {
                {"queue", required_argument, NULL, 'q'},
                {"to", required_argument, NULL, 't'},
                {"reason", required_argument, NULL, 'r'},
                {NULL, 0, NULL, 0},
        };
        bool transfer = strcmp(action, "transfer") == 0;
        /* decline and resolve: --reason only */
        const struct option *opts = transfer ? transfer_opts : transfer_opts + 2;
        const char *reason = NULL, *queue = NULL, *to = NULL;
        int opt;
        while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
                if (opt == 'r')
                        reason = optarg;
                else if (opt == 'q')
                        queue = optarg;
                else if (opt == 't')
                        to = optarg;
                else
                        return ctl_bad_option(argv[0], argv, opt);
        }
        int rc = ctl_positionals(argv[0], argc, argv, 1, "CONV");
        if (rc != CTL_OK)
                return rc;
        if (transfer && (queue == NULL) == (to == NULL))
                return ctl_usage_error(argv[0], "transfer needs one of --queue Q or --to AGENT");
        if ((queue && !*queue) || (to && !*to))
                return ctl_usage_error(argv[0], "empty --%s", queue ? "queue" : "to");

        json_t *body = json_object();
        const char *const fields[][2] = {{"reason", reason}, {"queue", queue}, {"to_agent", to}};
        for (size_t i = 0; body && i < sizeof(fields) / sizeof(fields[0]); i++) {
                if (fields[i][1] &&
                    json_object_set_new(body, fields[i][0], json_string(fields[i][1])) != 0) {
                        fprintf(stderr, "omniroutectl: '%s' is not valid UTF-8\n", fields[i][0]);
                        json_decref(body);
                        return CTL_ERROR;
                }
        }
        char what[200] = "";
        if (transfer)
                snprintf(what, sizeof(what), " to %s %.150s", queue ? "queue" : "agent",
                         queue ? queue : to);
        rc = body ? conv_action(c, argv[optind], action, body, done, what) : CTL_ERROR;
        json_decref(body);
        return rc;
}

int ctl_cmd_decline(struct ctl *c, int argc, char **argv)
{
        return conv_with_reason(c, argc, argv, "decline", "declined");
}

int ctl_cmd_resolve(struct ctl *c, int argc, char **argv)
{
        return conv_with_reason(c, argc, argv, "resolve", "resolved");
}

int ctl_cmd_transfer(struct ctl *c, int argc, char **argv)
{
        return conv_with_reason(c, argc, argv, "transfer", "transferred");
}

/* --- reply -------------------------------------------------------------- */

/* The reply from stdin, at most REPLY_MAX bytes, trailing newlines off;
 * malloc'd into *out. */
static int read_stdin_text(char **out)
{
        if (isatty(STDIN_FILENO))
                fputs("omniroutectl: type the reply; end it with Ctrl-D\n", stderr);
        char *buf = malloc(REPLY_MAX + 2);
        size_t n = buf ? fread(buf, 1, REPLY_MAX + 1, stdin) : 0;
        const char *problem = buf == NULL         ? "out of memory"
                              : ferror(stdin)     ? strerror(errno)
                              : n > REPLY_MAX     ? "the reply is over 64 KiB"
                              : memchr(buf, 0, n) ? "the reply holds a NUL byte"
                                                  : NULL;
        if (problem) {
                fprintf(stderr, "omniroutectl: cannot read the reply from stdin: %s\n", problem);
                free(buf);
                return CTL_ERROR;
        }
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                n--;
        buf[n] = '\0';
        *out = buf;
        return CTL_OK;
}

/* 16 random bytes as hex: the reply's idempotency key, so that the retry
 * below (or one by a proxy) cannot send the customer the reply twice. */
static int idempotency_key(char out[33])
{
        unsigned char rnd[16];
        if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
                return -1;
        for (size_t i = 0; i < sizeof(rnd); i++)
                snprintf(out + 2 * i, 3, "%02x", rnd[i]);
        return 0;
}

int ctl_cmd_reply(struct ctl *c, int argc, char **argv)
{
        /* No option parsing: TEXT is taken as it is, even when it starts
         * with '-'. */
        if (argc < 2 || argv[1][0] == '\0')
                return ctl_usage_error(argv[0], "missing CONV");
        if (argc > 3)
                return ctl_usage_error(argv[0], "unexpected argument '%s' (quote the text)",
                                       argv[3]);
        const char *conv = argv[1];
        bool from_stdin = argc == 2 || strcmp(argv[2], "-") == 0;
        char *text = NULL, key[33];
        if (!from_stdin && argv[2][0] == '\0')
                return ctl_usage_error(argv[0], "the reply is empty");
        /* the token before the text: nobody types a reply for nothing */
        int rc = ctl_connect(c);
        if (rc != CTL_OK)
                return rc;
        if (!from_stdin)
                text = strdup(argv[2]);
        else if ((rc = read_stdin_text(&text)) != CTL_OK)
                return rc;
        if (text && text[0] == '\0') {
                free(text);
                return ctl_usage_error(argv[0], "the reply is empty");
        }
        if (idempotency_key(key) != 0) {
                fprintf(stderr, "omniroutectl: getrandom: %s\n", strerror(errno));
                free(text);
                return CTL_ERROR;
        }
        json_t *body = text ? json_pack("{s:s, s:s, s:s}", "agent_id", c->agent, "text", text,
                                        "idempotency_key", key)
                            : NULL;
        free(text);
        char *path = ctl_path("/v1/conversations/", conv, "/replies");
        if (body == NULL || path == NULL) {
                fputs("omniroutectl: the reply (or --agent) is not valid UTF-8\n", stderr);
                free(path);
                json_decref(body);
                return CTL_ERROR;
        }
        struct ctl_response res;
        rc = ctl_call(c, "POST", path, body, &res);
        /* No answer, or the store was briefly away: once more, same key. */
        if (rc == CTL_ERROR && (res.status == 0 || res.status == 503)) {
                fputs("omniroutectl: trying once more (the same idempotency key: it is not sent "
                      "twice)\n",
                      stderr);
                ctl_response_clear(&res);
                sleep(REPLY_RETRY_S);
                rc = ctl_call(c, "POST", path, body, &res);
        }
        free(path);
        json_decref(body);
        if (rc == CTL_OK) {
                if (c->json) {
                        ctl_print_json(res.json);
                } else {
                        const char *id = json_string_value(json_object_get(res.json, "reply_id"));
                        fputs("reply ", stdout);
                        ctl_put_safe(stdout, id ? id : "?");
                        fputs(json_is_true(json_object_get(res.json, "duplicate"))
                                      ? " was already queued\n"
                                      : " queued\n",
                              stdout);
                }
        }
        ctl_response_clear(&res);
        return rc;
}
