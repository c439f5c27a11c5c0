/* ctl_agent.c — omniroutectl's agent commands: agent add / remove / list /
 * show (PUT, DELETE, GET /v1/agents[/{id}]) and presence: login [--stay],
 * away, logout (POST /v1/agents/{id}/presence). login --stay is the one
 * long-running command: a heartbeat until SIGINT / SIGTERM / SIGHUP. */
#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <time.h>

#include "ctl.h"

#define HEARTBEAT_DEFAULT_S 20 /* a third of the daemon's default 60 s timeout */
#define HEARTBEAT_MAX_S     3600
#define RETRY_S             5    /* after a failed heartbeat */
#define CAPACITY_MAX        1000 /* parallel conversations per channel: sanity only */

/* Appends s to the array obj[key], made on first use. */
static int push_string(json_t *obj, const char *key, const char *s)
{
        json_t *arr = json_object_get(obj, key);
        if (arr == NULL) {
                arr = json_array();
                if (json_object_set_new(obj, key, arr) != 0)
                        return -1;
        }
        return json_array_append_new(arr, json_string(s));
}

/* "CHANNEL=N" into capacity[CHANNEL] = N. */
static int set_capacity(json_t *agent, const char *cmd, const char *arg)
{
        const char *eq = strchr(arg, '=');
        char *end;
        errno = 0;
        long n = eq ? strtol(eq + 1, &end, 10) : -1;
        if (eq == NULL || eq == arg || eq[1] == '\0' || *end || errno || n < 0 || n > CAPACITY_MAX)
                return ctl_usage_error(cmd, "--capacity %s: expected CHANNEL=N, N from 0 to %d",
                                       arg, CAPACITY_MAX);
        json_t *cap = json_object_get(agent, "capacity");
        if (cap == NULL) {
                cap = json_object();
                json_object_set_new(agent, "capacity", cap);
        }
        char *channel = strndup(arg, (size_t)(eq - arg));
        int rc = channel && cap ? json_object_set_new(cap, channel, json_integer(n)) : -1;
        free(channel);
        if (rc != 0) {
                fputs("omniroutectl: out of memory\n", stderr);
                return CTL_ERROR;
        }
        return CTL_OK;
}

int ctl_cmd_agent_add(struct ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {
                {"name", required_argument, NULL, 'n'},  {"language", required_argument, NULL, 'l'},
                {"skill", required_argument, NULL, 's'}, {"capacity", required_argument, NULL, 'c'},
                {"queue", required_argument, NULL, 'q'}, {"team", required_argument, NULL, 't'},
                {"email", required_argument, NULL, 'e'}, {NULL, 0, NULL, 0},
        };
        /* Only what is given goes into the body: the daemon's defaults
         * stand for the rest. */
        json_t *agent = json_object();
        int opt, rc = agent ? CTL_OK : CTL_ERROR;
        while (rc == CTL_OK && (opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
                const char *key = NULL;
                switch (opt) {
                case 'n':
                        rc = json_object_set_new(agent, "name", json_string(optarg)) ? CTL_ERROR
                                                                                     : CTL_OK;
                        break;
                case 'e':
                        rc = json_object_set_new(agent, "email", json_string(optarg)) ? CTL_ERROR
                                                                                      : CTL_OK;
                        break;
                case 'l':
                        key = "languages";
                        break;
                case 's':
                        key = "skills";
                        break;
                case 'q':
                        key = "queues";
                        break;
                case 't':
                        key = "teams";
                        break;
                case 'c':
                        rc = set_capacity(agent, argv[0], optarg);
                        break;
                default:
                        rc = ctl_bad_option(argv[0], argv, opt);
                        break;
                }
                if (key && push_string(agent, key, optarg) != 0)
                        rc = CTL_ERROR;
                if (rc == CTL_ERROR && opt != 'c')
                        fputs("omniroutectl: an option value is not valid UTF-8\n", stderr);
        }
        if (rc == CTL_OK)
                rc = ctl_positionals(argv[0], argc, argv, 1, "ID");
        char *path = rc == CTL_OK ? ctl_path("/v1/agents/", argv[optind], "") : NULL;
        struct ctl_response res;
        if (rc == CTL_OK)
                rc = path ? ctl_call(c, "PUT", path, agent, &res) : CTL_ERROR;
        if (rc == CTL_OK) {
                if (c->json)
                        ctl_print_json(res.json);
                else
                        ctl_print_agent(json_object_get(res.json, "agent"));
                ctl_response_clear(&res);
        }
        free(path);
        json_decref(agent);
        return rc;
}

/* GET or DELETE /v1/agents/{id}. */
static int agent_one(struct ctl *c, int argc, char **argv, const char *method)
{
        int rc = ctl_args(argv[0], argc, argv, 1, "ID");
        if (rc != CTL_OK)
                return rc;
        char *path = ctl_path("/v1/agents/", argv[optind], "");
        struct ctl_response res;
        if (path == NULL || (rc = ctl_call(c, method, path, NULL, &res)) != CTL_OK) {
                free(path);
                return path ? rc : CTL_ERROR;
        }
        free(path);
        if (c->json) {
                ctl_print_json(res.json);
        } else if (strcmp(method, "DELETE") == 0) {
                fputs("removed agent ", stdout);
                ctl_put_safe(stdout, argv[optind]);
                fputc('\n', stdout);
        } else {
                ctl_print_agent(json_object_get(res.json, "agent"));
        }
        ctl_response_clear(&res);
        return CTL_OK;
}

int ctl_cmd_agent_remove(struct ctl *c, int argc, char **argv)
{
        return agent_one(c, argc, argv, "DELETE");
}

int ctl_cmd_agent_show(struct ctl *c, int argc, char **argv)
{
        return agent_one(c, argc, argv, "GET");
}

int ctl_cmd_agent_list(struct ctl *c, int argc, char **argv)
{
        int rc = ctl_args(argv[0], argc, argv, 0, "");
        struct ctl_response res;
        if (rc != CTL_OK || (rc = ctl_call(c, "GET", "/v1/agents", NULL, &res)) != CTL_OK)
                return rc;
        if (c->json)
                ctl_print_json(res.json);
        else
                ctl_print_agent_table(json_object_get(res.json, "agents"));
        ctl_response_clear(&res);
        return CTL_OK;
}

/* --- presence ----------------------------------------------------------- */

static int64_t now_ms(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* POST presence; prints nothing on success (*res holds the answer). */
static int post_presence(struct ctl *c, const char *status, struct ctl_response *res)
{
        char *path = ctl_path("/v1/agents/", c->agent, "/presence");
        json_t *body = json_pack("{s:s}", "status", status);
        int rc = path && body ? ctl_call(c, "POST", path, body, res) : CTL_ERROR;
        free(path);
        json_decref(body);
        return rc;
}

/* "ana is online until 16:00:05" (or with what, instead of the expiry). */
static void print_presence(const struct ctl *c, const struct ctl_response *res, const char *what)
{
        if (c->json) {
                ctl_print_json(res->json);
                return;
        }
        const char *status = json_string_value(json_object_get(res->json, "status"));
        json_t *exp = json_object_get(res->json, "expires_at");
        ctl_put_safe(stdout, c->agent);
        fputs(" is ", stdout);
        ctl_put_safe(stdout, status ? status : "?");
        if (what) {
                fputs(what, stdout);
        } else if (json_is_integer(exp) && (!status || strcmp(status, "offline") != 0)) {
                char when[32];
                ctl_format_ms(json_integer_value(exp), when, sizeof(when));
                printf(" until %s", when);
                if (strcmp(status, "online") == 0)
                        fputs(" (login --stay keeps it)", stdout);
        }
        fputc('\n', stdout);
        fflush(stdout);
}

/* away / logout / plain login */
static int presence_once(struct ctl *c, const char *status)
{
        struct ctl_response res;
        int rc = post_presence(c, status, &res);
        if (rc == CTL_OK)
                print_presence(c, &res, NULL);
        ctl_response_clear(&res);
        return rc;
}

int ctl_cmd_away(struct ctl *c, int argc, char **argv)
{
        int rc = ctl_args(argv[0], argc, argv, 0, "");
        return rc == CTL_OK ? presence_once(c, "away") : rc;
}

int ctl_cmd_logout(struct ctl *c, int argc, char **argv)
{
        int rc = ctl_args(argv[0], argc, argv, 0, "");
        return rc == CTL_OK ? presence_once(c, "offline") : rc;
}

static volatile sig_atomic_t stop_signal;

static void on_stop(int sig)
{
        stop_signal = sig;
}

static const int stop_signals[] = {SIGINT, SIGTERM, SIGHUP};

static void set_stop_handlers(void (*handler)(int))
{
        struct sigaction sa;
        memset(&sa, 0, sizeof(sa));
        sa.sa_handler = handler;
        sigemptyset(&sa.sa_mask);
        /* pselect() and curl's poll() return EINTR all the same (signal(7)) */
        sa.sa_flags = SA_RESTART;
        for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
                sigaction(stop_signals[i], &sa, NULL);
}

/* Sleeps up to seconds, returning early on a stop signal. The check of the
 * flag and the sleep are one step with the signals blocked in between
 * (pselect), so a signal cannot slip in after the check and be slept
 * through. */
static void wait_or_stop(int seconds)
{
        sigset_t block, old;
        sigemptyset(&block);
        for (size_t i = 0; i < sizeof(stop_signals) / sizeof(stop_signals[0]); i++)
                sigaddset(&block, stop_signals[i]);
        sigprocmask(SIG_BLOCK, &block, &old);
        struct timespec ts = {.tv_sec = seconds};
        if (!stop_signal)
                pselect(0, NULL, NULL, NULL, &ts, &old);
        sigprocmask(SIG_SETMASK, &old, NULL);
}

/* Heartbeat period: --interval, else a third of what the daemon granted
 * (its agents.heartbeat_timeout) but at most HEARTBEAT_DEFAULT_S. */
static int heartbeat_period(int interval, const struct ctl_response *res)
{
        if (interval > 0)
                return interval;
        json_t *exp = json_object_get(res->json, "expires_at");
        if (!json_is_integer(exp))
                return HEARTBEAT_DEFAULT_S;
        int64_t left_s = (json_integer_value(exp) - now_ms()) / 1000;
        if (left_s / 3 >= HEARTBEAT_DEFAULT_S)
                return HEARTBEAT_DEFAULT_S;
        return left_s / 3 >= 1 ? (int)(left_s / 3) : 1;
}

/* 4xx but 408 / 429: the daemon will not change its mind on a retry. */
static bool permanent(long status)
{
        return status >= 400 && status < 500 && status != 408 && status != 429;
}

static int stay_online(struct ctl *c, int interval)
{
        int rc = ctl_connect(c);
        if (rc != CTL_OK)
                return rc;
        stop_signal = 0;
        set_stop_handlers(on_stop);
        ctl_http_set_abort(c->http, &stop_signal);

        struct ctl_response res;
        int period = interval > 0 ? interval : HEARTBEAT_DEFAULT_S;
        bool first = true;
        while (!stop_signal) {
                rc = post_presence(c, "online", &res);
                if (stop_signal) {
                        ctl_response_clear(&res);
                        break;
                }
                if (rc == CTL_OK) {
                        period = heartbeat_period(interval, &res);
                        if (first) {
                                char what[64];
                                snprintf(what, sizeof(what),
                                         "; renewed every %d s, Ctrl-C logs out", period);
                                print_presence(c, &res, what);
                        }
                        first = false;
                } else if (first || permanent(res.status)) {
                        /* a wrong token, agent or URL: no point in going on */
                        ctl_response_clear(&res);
                        set_stop_handlers(SIG_DFL);
                        ctl_http_set_abort(c->http, NULL);
                        return rc;
                }
                ctl_response_clear(&res);
                int wait = rc == CTL_OK || period < RETRY_S ? period : RETRY_S;
                if (rc != CTL_OK)
                        fprintf(stderr, "omniroutectl: heartbeat failed; trying again in %d s\n",
                                wait);
                wait_or_stop(wait);
        }
        /* A second Ctrl-C now ends the program without the offline post. */
        set_stop_handlers(SIG_DFL);
        ctl_http_set_abort(c->http, NULL);
        if ((rc = post_presence(c, "offline", &res)) == CTL_OK)
                print_presence(c, &res, NULL);
        ctl_response_clear(&res);
        return rc;
}

int ctl_cmd_login(struct ctl *c, int argc, char **argv)
{
        static const struct option opts[] = {
                {"stay", no_argument, NULL, 's'},
                {"interval", required_argument, NULL, 'i'},
                {NULL, 0, NULL, 0},
        };
        bool stay = false;
        long interval = 0;
        char *end;
        int opt;
        while ((opt = getopt_long(argc, argv, ":", opts, NULL)) != -1) {
                switch (opt) {
                case 's':
                        stay = true;
                        break;
                case 'i':
                        errno = 0;
                        interval = strtol(optarg, &end, 10);
                        if (*end || errno || interval < 1 || interval > HEARTBEAT_MAX_S)
                                return ctl_usage_error(argv[0],
                                                       "--interval: seconds from 1 to %d, not "
                                                       "'%s'",
                                                       HEARTBEAT_MAX_S, optarg);
                        break;
                default:
                        return ctl_bad_option(argv[0], argv, opt);
                }
        }
        int rc = ctl_positionals(argv[0], argc, argv, 0, "");
        if (rc != CTL_OK)
                return rc;
        if (interval && !stay)
                return ctl_usage_error(argv[0], "--interval goes with --stay");
        return stay ? stay_online(c, (int)interval) : presence_once(c, "online");
}
