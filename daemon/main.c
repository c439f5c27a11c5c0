/* main.c — omnirouted's entry point: arguments, configuration check,
 * signals, the one event loop. The only file that exits. */
#include <event2/event.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>

#include "core.h"
#include "omniroute/log.h"

#define DEFAULT_CONFIG "/etc/omniroute/omnirouted.yaml"

static void usage(FILE *out)
{
        fprintf(out, "usage: omnirouted [-c FILE] [--check-config] [--foreground] [--version]\n"
                     "  -c, --config FILE   configuration (default " DEFAULT_CONFIG ")\n"
                     "      --check-config  validate FILE, print problems as FILE:LINE: message,\n"
                     "                      exit 0 if valid, 1 if not\n"
                     "      --foreground    accepted for init scripts; omnirouted never forks\n"
                     "                      (run it under systemd, Type=notify)\n"
                     "      --version       print the version\n");
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
        struct omr_core *core = arg;
        (void)what;
        if (sig == SIGHUP)
                omr_core_reload(core);
        else
                omr_core_shutdown(core);
}

int main(int argc, char **argv)
{
        static const struct option opts[] = {
                {"config", required_argument, NULL, 'c'}, {"check-config", no_argument, NULL, 'k'},
                {"foreground", no_argument, NULL, 'f'},   {"version", no_argument, NULL, 'V'},
                {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
        };
        const char *path = DEFAULT_CONFIG;
        bool check_only = false;
        int opt;

        while ((opt = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
                switch (opt) {
                case 'c':
                        path = optarg;
                        break;
                case 'k':
                        check_only = true;
                        break;
                case 'f':
                        break;
                case 'V':
                        printf("omnirouted %s\n", OMR_VERSION);
                        return 0;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind != argc) {
                usage(stderr);
                return 2;
        }

        struct omr_conf_errors errs;
        struct omr_conf *conf = omr_conf_load(path, &errs);
        if (conf == NULL) {
                for (size_t i = 0; i < errs.n; i++)
                        fprintf(stderr, "%s\n", errs.msg[i]);
                if (errs.n == OMR_CONF_MAX_ERRORS)
                        fprintf(stderr, "%s: (more errors not shown)\n", path);
                return 1;
        }
        if (check_only) {
                printf("%s: ok\n", path);
                omr_conf_free(conf);
                return 0;
        }

        umask(027);
        signal(SIGPIPE, SIG_IGN);
        /* Every chat visitor holds a socket: allow as many files as the
         * hard limit (systemd's LimitNOFILE) permits. */
        struct rlimit nofile;
        if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
                nofile.rlim_cur = nofile.rlim_max;
                setrlimit(RLIMIT_NOFILE, &nofile);
        }
        struct event_base *base = event_base_new();
        if (base == NULL) {
                fprintf(stderr, "omnirouted: cannot create the event loop\n");
                omr_conf_free(conf);
                return 1;
        }
        struct omr_core *core = omr_core_new(base, conf);
        if (core == NULL) {
                omr_log(LOG_CRIT, "core", "cannot initialise (out of memory?)");
                event_base_free(base);
                return 1;
        }
        struct event *sigs[] = {
                evsignal_new(base, SIGTERM, on_signal, core),
                evsignal_new(base, SIGINT, on_signal, core),
                evsignal_new(base, SIGHUP, on_signal, core),
        };
        int rc = 0;
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
                if (sigs[i] == NULL || evsignal_add(sigs[i], NULL) != 0)
                        rc = -1;
        if (rc == 0)
                rc = omr_core_start(core);
        if (rc == 0)
                event_base_dispatch(base);
        else
                omr_log(LOG_CRIT, "core", "cannot start; exiting");
        for (size_t i = 0; i < sizeof(sigs) / sizeof(sigs[0]); i++)
                if (sigs[i])
                        event_free(sigs[i]);
        omr_core_free(core);
        event_base_free(base);
        return rc == 0 ? 0 : 1;
}
