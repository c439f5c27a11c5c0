/* omniroutectl.c — the agents' terminal tool for omnirouted: global
 * options, the command table, the token file, and the one error path for
 * the daemon's answers. Commands live in ctl_agent.c and ctl_conv.c, the
 * HTTP client in ctl_http.c, the printers in ctl_print.c. The only file
 * that decides the exit code. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ctl.h"

#ifndef OMR_VERSION
#define OMR_VERSION "dev"
#endif

#define DEFAULT_URL "http://127.0.0.1:8080"
#define TOKEN_MAX   4096 /* as the daemon's secret files */

#define NEEDS_AGENT 1u

static const struct command {
        const char *name; /* "agent add": a group and its subcommand */
        const char *args;
        int (*fn)(struct ctl *c, int argc, char **argv);
        unsigned flags;
} commands[] = {
        {"agent add",
         "ID [--name N] [--language L]... [--skill S]... [--capacity CHANNEL=N]...\n"
         "                  [--queue Q]... [--team T]... [--email ADDR]",
         ctl_cmd_agent_add, 0},
        {"agent remove", "ID", ctl_cmd_agent_remove, 0},
        {"agent list", "", ctl_cmd_agent_list, 0},
        {"agent show", "ID", ctl_cmd_agent_show, 0},
        {"login", "[--stay [--interval SECONDS]]", ctl_cmd_login, NEEDS_AGENT},
        {"away", "", ctl_cmd_away, NEEDS_AGENT},
        {"logout", "", ctl_cmd_logout, NEEDS_AGENT},
        {"next", "", ctl_cmd_next, NEEDS_AGENT},
        {"show", "CONV", ctl_cmd_show, 0},
        {"accept", "CONV", ctl_cmd_accept, NEEDS_AGENT},
        {"decline", "CONV [--reason R]", ctl_cmd_decline, NEEDS_AGENT},
        {"reply", "CONV [TEXT]   (TEXT, or stdin when it is absent or \"-\")", ctl_cmd_reply,
         NEEDS_AGENT},
        {"resolve", "CONV [--reason R]", ctl_cmd_resolve, NEEDS_AGENT},
        {"transfer", "CONV (--queue Q | --to AGENT) [--reason R]", ctl_cmd_transfer, NEEDS_AGENT},
        {"stats", "", ctl_cmd_stats, 0},
};

static const struct option global_opts[] = {
        {"url", required_argument, NULL, 'u'},
        {"token-file", required_argument, NULL, 't'},
        {"agent", required_argument, NULL, 'a'},
        {"json", no_argument, NULL, 'j'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
};

static void usage(FILE *out)
{
        fputs("usage: omniroutectl [--url URL] [--token-file FILE] [--agent ID] [--json] COMMAND "
              "[ARGS]\n\ncommands:\n",
              out);
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                fprintf(out, "  %s%s%s\n", commands[i].name, *commands[i].args ? " " : "",
                        commands[i].args);
        fputs("  version | help\n"
              "\noptions (before the command):\n"
              "  --url URL          the daemon (env OMNIROUTE_URL, default " DEFAULT_URL ")\n"
              "  --token-file FILE  file holding an api.tokens token (env OMNIROUTE_TOKEN_FILE);\n"
              "                     there is no way to pass the token itself on the command line\n"
              "  --agent ID         the agent acting (env OMNIROUTE_AGENT)\n"
              "  --json             print the daemon's JSON answer\n"
              "\nexit status: 0 ok, 1 error, 2 usage, 3 nothing to claim\n",
              out);
}

static const struct command *find_command(const char *name)
{
        for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++)
                if (strcmp(commands[i].name, name) == 0)
                        return &commands[i];
        return NULL;
}

int ctl_usage_error(const char *cmd, const char *fmt, ...)
{
        va_list ap;
        fputs("omniroutectl: ", stderr);
        va_start(ap, fmt);
        vfprintf(stderr, fmt, ap);
        va_end(ap);
        fputc('\n', stderr);
        const struct command *c = cmd ? find_command(cmd) : NULL;
        if (c)
                fprintf(stderr, "usage: omniroutectl %s%s%s\n", c->name, *c->args ? " " : "",
                        c->args);
        else
                fputs("try 'omniroutectl help'\n", stderr);
        return CTL_USAGE;
}

int ctl_bad_option(const char *cmd, char **argv, int opt)
{
        /* A long option is the word getopt just passed ("--url" or
         * "--url=x"); a short one is in optopt (which, for a long option
         * missing its value, holds that option's code instead). */
        const char *word = optind > 0 ? argv[optind - 1] : "";
        char shortopt[3] = {'-', (char)optopt, '\0'};
        const char *what = strncmp(word, "--", 2) == 0 || optopt == 0 ? word : shortopt;
        int len = (int)strcspn(what, "=");
        bool global = false;
        for (const struct option *o = global_opts; cmd && o->name; o++)
                global |= strncmp(what, "--", 2) == 0 && len == (int)strlen(o->name) + 2 &&
                          strncmp(what + 2, o->name, (size_t)len - 2) == 0;
        return ctl_usage_error(cmd, "%.*s: %s", len, what,
                               opt == ':' ? "needs a value"
                               : global   ? "a global option: it goes before the command"
                               : cmd      ? "unknown option for this command"
                                          : "unknown option (a command's options go after it)");
}

int ctl_positionals(const char *cmd, int argc, char **argv, int n, const char *names)
{
        int have = argc - optind;
        if (have < n)
                return ctl_usage_error(cmd, "missing %s", names);
        if (have > n)
                return ctl_usage_error(cmd, "unexpected argument '%s'", argv[optind + n]);
        for (int i = 0; i < n; i++)
                if (argv[optind + i][0] == '\0')
                        return ctl_usage_error(cmd, "empty %s", names);
        return CTL_OK;
}

int ctl_args(const char *cmd, int argc, char **argv, int n, const char *names)
{
        static const struct option none[] = {{NULL, 0, NULL, 0}};
        int opt = getopt_long(argc, argv, ":", none, NULL);
        if (opt != -1)
                return ctl_bad_option(cmd, argv, opt);
        return ctl_positionals(cmd, argc, argv, n, names);
}

/* The token from path: at most TOKEN_MAX bytes, trailing CR/LF dropped,
 * no control characters (it goes into a header line). Never printed. */
static int read_token(const char *path, char **out)
{
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                fprintf(stderr, "omniroutectl: cannot read the token file %s: %s\n", path,
                        strerror(errno));
                return CTL_ERROR;
        }
        struct stat st;
        if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && (st.st_mode & 0077) != 0)
                fprintf(stderr,
                        "omniroutectl: warning: the token file %s is readable by group or "
                        "others (chmod 600 it)\n",
                        path);
        char *buf = malloc(TOKEN_MAX + 2);
        size_t n = 0;
        ssize_t r = buf ? 1 : -1;
        /* a loop: the file may be a pipe, e.g. --token-file <(pass show omniroute) */
        while (r > 0 && n <= TOKEN_MAX) {
                r = read(fd, buf + n, TOKEN_MAX + 1 - n);
                if (r < 0 && errno == EINTR)
                        r = 1;
                else if (r > 0)
                        n += (size_t)r;
        }
        close(fd);
        const char *problem = r < 0 ? strerror(errno) : n > TOKEN_MAX ? "over 4096 bytes" : NULL;
        if (problem == NULL) {
                while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                        n--;
                buf[n] = '\0';
                if (n == 0)
                        problem = "it is empty";
                for (size_t i = 0; i < n && problem == NULL; i++)
                        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f)
                                problem = "it holds control characters";
        }
        if (problem) {
                fprintf(stderr, "omniroutectl: cannot use the token file %s: %s\n", path, problem);
                if (buf) {
                        explicit_bzero(buf, TOKEN_MAX + 2);
                        free(buf);
                }
                return CTL_ERROR;
        }
        *out = buf;
        return CTL_OK;
}

/* The HTTP client is made on the first call so that usage errors come
 * before token errors. */
int ctl_connect(struct ctl *c)
{
        if (c->http)
                return CTL_OK;
        if (c->token_file == NULL)
                return ctl_usage_error(NULL, "no token: use --token-file FILE or set "
                                             "OMNIROUTE_TOKEN_FILE");
        char *token = NULL;
        int rc = read_token(c->token_file, &token);
        if (rc != CTL_OK)
                return rc;
        c->http = ctl_http_new(c->url, token);
        explicit_bzero(token, strlen(token));
        free(token);
        if (c->http == NULL) {
                fputs("omniroutectl: cannot set up libcurl\n", stderr);
                return CTL_ERROR;
        }
        return CTL_OK;
}

int ctl_call(struct ctl *c, const char *method, const char *path, const json_t *body,
             struct ctl_response *res)
{
        memset(res, 0, sizeof(*res));
        int rc = ctl_connect(c);
        if (rc != CTL_OK)
                return rc;
        if (ctl_http_call(c->http, method, path, body, res) != 0) {
                if (!res->interrupted)
                        fprintf(stderr, "omniroutectl: no answer from %s: %s\n", c->url,
                                res->error);
                return CTL_ERROR;
        }
        if (res->status >= 200 && res->status < 300)
                return CTL_OK;
        const char *error = json_string_value(json_object_get(res->json, "error"));
        const char *detail = json_string_value(json_object_get(res->json, "detail"));
        fputs("omniroutectl: ", stderr);
        if (error) {
                ctl_put_safe(stderr, error);
                fputs(": ", stderr);
                ctl_put_safe(stderr, detail ? detail : "(no detail)");
        } else {
                /* not the daemon's error shape: a proxy in between, most likely */
                fprintf(stderr, "HTTP %ld: ", res->status);
                if (res->len > 200)
                        res->body[200] = '\0';
                ctl_put_safe(stderr, res->len ? res->body : "(empty answer)");
        }
        fputc('\n', stderr);
        long status = res->status;
        ctl_response_clear(res);
        res->status = status;
        return CTL_ERROR;
}

static const char *env(const char *name)
{
        const char *v = getenv(name);
        return v && *v ? v : NULL;
}

/* argv[0] is the command (or the group: "agent"); *used: how many words
 * name the command. */
static const struct command *lookup(int argc, char **argv, int *used)
{
        *used = 1;
        if (strcmp(argv[0], "agent") == 0) {
                char name[64];
                if (argc < 2)
                        return NULL;
                snprintf(name, sizeof(name), "agent %.40s", argv[1]);
                *used = 2;
                return find_command(name);
        }
        return find_command(argv[0]);
}

int main(int argc, char **argv)
{
        struct ctl c = {
                .url = env("OMNIROUTE_URL"),
                .token_file = env("OMNIROUTE_TOKEN_FILE"),
                .agent = env("OMNIROUTE_AGENT"),
        };
        int opt;

        opterr = 0;
        /* '+': options end at the command; the command parses the rest */
        while ((opt = getopt_long(argc, argv, "+:h", global_opts, NULL)) != -1) {
                switch (opt) {
                case 'u':
                        c.url = optarg;
                        break;
                case 't':
                        /* getopt_long takes "--token X" as an abbreviation
                         * of --token-file: a token typed on the command line
                         * would be taken for a path, and shown in errors. */
                        if (strncmp(argv[optind - (optarg == argv[optind - 1] ? 2 : 1)],
                                    "--token-file", 12) != 0)
                                return ctl_usage_error(NULL, "the token is only read from a file: "
                                                             "--token-file FILE, in full");
                        c.token_file = optarg;
                        break;
                case 'a':
                        c.agent = optarg;
                        break;
                case 'j':
                        c.json = true;
                        break;
                case 'h':
                        usage(stdout);
                        return CTL_OK;
                case 'V':
                        printf("omniroutectl %s\n", OMR_VERSION);
                        return CTL_OK;
                default:
                        return ctl_bad_option(NULL, argv, opt);
                }
        }
        argc -= optind;
        argv += optind;
        if (argc == 0) {
                usage(stderr);
                return CTL_USAGE;
        }
        if (strcmp(argv[0], "help") == 0) {
                usage(stdout);
                return CTL_OK;
        }
        if (strcmp(argv[0], "version") == 0) {
                printf("omniroutectl %s\n", OMR_VERSION);
                return CTL_OK;
        }
        int used;
        const struct command *cmd = lookup(argc, argv, &used);
        if (cmd == NULL && strcmp(argv[0], "agent") == 0 && argc < 2)
                return ctl_usage_error(NULL, "agent needs one of add, remove, list, show");
        if (cmd == NULL) {
                fprintf(stderr, "omniroutectl: unknown command '%s%s%s'\n", argv[0],
                        used == 2 ? " " : "", used == 2 ? argv[1] : "");
                usage(stderr);
                return CTL_USAGE;
        }
        if ((cmd->flags & NEEDS_AGENT) && c.agent == NULL)
                return ctl_usage_error(cmd->name,
                                       "%s acts as an agent: use --agent ID or set "
                                       "OMNIROUTE_AGENT",
                                       cmd->name);

        char *url = strdup(c.url ? c.url : DEFAULT_URL);
        if (url == NULL) {
                fputs("omniroutectl: out of memory\n", stderr);
                return CTL_ERROR;
        }
        size_t n = strlen(url);
        while (n > 0 && url[n - 1] == '/')
                url[--n] = '\0';
        c.url = url;

        /* The command sees itself as argv[0] ("agent add"), so getopt and
         * its messages name it. */
        argv += used - 1;
        argc -= used - 1;
        argv[0] = (char *)cmd->name;
        optind = 0; /* glibc: start a fresh scan of the new argv */
        int rc = cmd->fn(&c, argc, argv);

        ctl_http_free(c.http);
        free(url);
        return rc;
}
