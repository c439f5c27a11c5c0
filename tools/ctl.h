/* ctl.h — omniroutectl's shared pieces: exit codes, the run context every
 * command gets, the HTTP calls (ctl_http.c) and the human-readable printers
 * (ctl_print.c). omniroutectl is a single-threaded, blocking command-line
 * tool: nothing here runs on the daemon's event loop. */
#ifndef OMR_CTL_H
#define OMR_CTL_H

#include <jansson.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Exit codes, as the contract lists them. */
enum ctl_exit {
        CTL_OK = 0,
        CTL_ERROR = 1,   /* the daemon refused, or could not be reached */
        CTL_USAGE = 2,   /* bad command line */
        CTL_NOTHING = 3, /* "next": nothing to claim */
};

/* --- HTTP (ctl_http.c) -------------------------------------------------- */

struct ctl_http;

/* One answer. json is the parsed body when it is a JSON document. */
struct ctl_response {
        long status; /* HTTP status; 0 when no answer arrived (see error) */
        char *body;  /* NUL-terminated, len bytes (may contain NULs) */
        size_t len;
        json_t *json;
        char error[256];  /* transport failure, set when status is 0 */
        bool interrupted; /* ... because the abort flag was raised */
};

/* base_url without a trailing '/'; token is copied and wiped at free. */
struct ctl_http *ctl_http_new(const char *base_url, const char *token);
void ctl_http_free(struct ctl_http *h);

/* While *flag is non-zero, a transfer in progress is abandoned (login
 * --stay's heartbeats, so that Ctrl-C does not wait for a slow daemon).
 * NULL: never. */
void ctl_http_set_abort(struct ctl_http *h, const volatile sig_atomic_t *flag);

/* method path (starting with '/'), body (NULL: none) -> *res, which the
 * caller clears with ctl_response_clear(). Returns 0 when an HTTP answer
 * arrived (any status), -1 when none did (res->error says why). */
int ctl_http_call(struct ctl_http *h, const char *method, const char *path, const json_t *body,
                  struct ctl_response *res);
void ctl_response_clear(struct ctl_response *res);

/* prefix + id (percent-encoded as one path segment) + suffix; malloc'd,
 * NULL when out of memory. */
char *ctl_path(const char *prefix, const char *id, const char *suffix);

/* --- the run (omniroutectl.c) ------------------------------------------- */

struct ctl {
        const char *url;        /* daemon base URL, no trailing '/' */
        const char *token_file; /* --token-file / OMNIROUTE_TOKEN_FILE; NULL when unset */
        const char *agent;      /* --agent / OMNIROUTE_AGENT; NULL when unset */
        bool json;              /* --json: print the daemon's JSON */
        struct ctl_http *http;
};

/* The HTTP client, made (and the token file read) on first use; ctl_call
 * does it too. Returns an exit code, CTL_OK when c->http is ready. */
int ctl_connect(struct ctl *c);

/* One request with the common error handling: on a transport failure or a
 * status other than 2xx the error goes to stderr (not when interrupted)
 * and CTL_ERROR is returned with only res->status (0: no answer) and
 * res->interrupted left; on success *res holds the answer. Either way,
 * clearing *res with ctl_response_clear() is safe. */
int ctl_call(struct ctl *c, const char *method, const char *path, const json_t *body,
             struct ctl_response *res);

/* "omniroutectl: <what>" plus the command's usage line to stderr; returns
 * CTL_USAGE. */
int ctl_usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same for the option getopt_long() just refused (opt: '?' or ':'). */
int ctl_bad_option(const char *cmd, char **argv, int opt);
/* For a command without options: exactly n positional arguments. */
int ctl_args(const char *cmd, int argc, char **argv, int n, const char *names);
/* After a command's getopt_long() loop: exactly n positional arguments
 * left (their names for the message, e.g. "ID"), else a usage error. */
int ctl_positionals(const char *cmd, int argc, char **argv, int n, const char *names);

/* --- commands (ctl_agent.c, ctl_conv.c) --------------------------------- */

/* Each gets argv[0] = its own name, the rest after it. */
int ctl_cmd_agent_add(struct ctl *c, int argc, char **argv);
int ctl_cmd_agent_remove(struct ctl *c, int argc, char **argv);
int ctl_cmd_agent_list(struct ctl *c, int argc, char **argv);
int ctl_cmd_stats(struct ctl *c, int argc, char **argv);
int ctl_cmd_agent_show(struct ctl *c, int argc, char **argv);
int ctl_cmd_login(struct ctl *c, int argc, char **argv);
int ctl_cmd_away(struct ctl *c, int argc, char **argv);
int ctl_cmd_logout(struct ctl *c, int argc, char **argv);
int ctl_cmd_next(struct ctl *c, int argc, char **argv);
int ctl_cmd_show(struct ctl *c, int argc, char **argv);
int ctl_cmd_accept(struct ctl *c, int argc, char **argv);
int ctl_cmd_decline(struct ctl *c, int argc, char **argv);
int ctl_cmd_reply(struct ctl *c, int argc, char **argv);
int ctl_cmd_resolve(struct ctl *c, int argc, char **argv);
int ctl_cmd_transfer(struct ctl *c, int argc, char **argv);

/* --- output (ctl_print.c) ----------------------------------------------- */

/* The daemon's JSON, indented, to stdout. */
void ctl_print_json(const json_t *j);
/* s with control characters (but \n and \t) shown as '?': customers'
 * text never moves the terminal's cursor or changes its colours. */
void ctl_put_safe(FILE *f, const char *s);
/* "2026-03-06 16:00:05" in local time, from Unix milliseconds. */
void ctl_format_ms(int64_t ms, char *buf, size_t size);
void ctl_print_agent(const json_t *agent);
void ctl_print_agent_table(const json_t *agents);
void ctl_print_conversation(const json_t *conv, const char *via);
/* The messages of GET /v1/conversations/{id}; unanswered_only: just the
 * customer's messages after the last one sent to them. */
void ctl_print_messages(const json_t *messages, bool unanswered_only);

#endif
