/* embedded_redis.c — runs a child redis-server for the embedded mode.
 *
 * The child gets its own process group (a terminal's Ctrl-C reaches only
 * the daemon, which stops Redis after draining) and PR_SET_PDEATHSIG (it
 * dies with the daemon even on a crash). Exits are seen through a libevent
 * SIGCHLD event; nothing here blocks the loop. */
#include <errno.h>
#include <event2/event.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "embedded_redis.h"
#include "omniroute/log.h"

#define ER_MAGIC 0xe3bed5u

struct omr_embedded_redis {
        unsigned magic;
        struct event_base *base;
        char *server;
        char dir[256]; /* a unix socket path must fit in 108 bytes */
        char data_dir[PATH_MAX];
        char socket[PATH_MAX];
        pid_t pid;
        bool stopping;
        struct event *sigchld_ev;
        struct event *restart_ev;
        struct event *kill_ev;
        void (*done)(void *arg);
        void *done_arg;
};

static int mkdir_p(const char *path, mode_t mode)
{
        char buf[PATH_MAX];
        snprintf(buf, sizeof(buf), "%s", path);
        for (char *p = buf + 1; *p; p++) {
                if (*p != '/')
                        continue;
                *p = '\0';
                if (mkdir(buf, mode) != 0 && errno != EEXIST)
                        return -errno;
                *p = '/';
        }
        if (mkdir(buf, mode) != 0 && errno != EEXIST)
                return -errno;
        return 0;
}

/* $RUNTIME_DIRECTORY may list several directories separated by ':'. */
static void first_dir(const char *env, char *out, size_t cap)
{
        size_t n = strcspn(env, ":");
        snprintf(out, cap, "%.*s", (int)n, env);
}

static void pick_dirs(struct omr_embedded_redis *e, const struct omr_conf_redis *conf)
{
        const char *v;
        if (conf->embedded_dir)
                snprintf(e->dir, sizeof(e->dir), "%s", conf->embedded_dir);
        else if ((v = getenv("RUNTIME_DIRECTORY")) && *v)
                first_dir(v, e->dir, sizeof(e->dir));
        else if ((v = getenv("XDG_RUNTIME_DIR")) && *v)
                snprintf(e->dir, sizeof(e->dir), "%s/omnirouted", v);
        else
                snprintf(e->dir, sizeof(e->dir), "/tmp/omnirouted-%u", (unsigned)getuid());
        /* Data survives reboots under systemd's StateDirectory=. */
        if (!conf->embedded_dir && (v = getenv("STATE_DIRECTORY")) && *v)
                first_dir(v, e->data_dir, sizeof(e->data_dir));
        else
                snprintf(e->data_dir, sizeof(e->data_dir), "%s", e->dir);
        snprintf(e->socket, sizeof(e->socket), "%s/redis.sock", e->dir);
}

static int spawn(struct omr_embedded_redis *e)
{
        pid_t parent = getpid();
        pid_t pid = fork();
        if (pid < 0) {
                omr_log(LOG_ERR, "redis", "cannot fork embedded redis-server: %s", strerror(errno));
                return -errno;
        }
        if (pid == 0) {
                /* Child: only async-signal-safe calls until exec. */
                setpgid(0, 0);
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                if (getppid() != parent)
                        _exit(1);
                dup2(STDERR_FILENO, STDOUT_FILENO);
                char *argv[] = {
                        e->server,   "--port",
                        "0",         "--unixsocket",
                        e->socket,   "--unixsocketperm",
                        "700",       "--dir",
                        e->data_dir, "--daemonize",
                        "no",        "--save",
                        "",          "--appendonly",
                        "yes",       "--appendfsync",
                        "everysec",  "--loglevel",
                        "warning",   "--logfile",
                        "",          NULL,
                };
                execvp(e->server, argv);
                _exit(127);
        }
        e->pid = pid;
        omr_log(LOG_INFO, "redis", "embedded redis-server started pid=%d socket=%s", (int)pid,
                e->socket);
        return 0;
}

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
        struct omr_embedded_redis *e = arg;
        (void)fd;
        (void)what;
        OMR_MAGIC_CHECK(e, ER_MAGIC);
        if (!e->stopping && e->pid == 0 && spawn(e) != 0) {
                struct timeval tv = {1, 0};
                evtimer_add(e->restart_ev, &tv);
        }
}

static void finish(struct omr_embedded_redis *e)
{
        void (*done)(void *) = e->done;
        void *arg = e->done_arg;
        event_free(e->sigchld_ev);
        event_free(e->restart_ev);
        event_free(e->kill_ev);
        free(e->server);
        e->magic = 0;
        free(e);
        if (done)
                done(arg);
}

static void on_sigchld(evutil_socket_t fd, short what, void *arg)
{
        struct omr_embedded_redis *e = arg;
        int status;
        (void)fd;
        (void)what;
        OMR_MAGIC_CHECK(e, ER_MAGIC);
        if (e->pid == 0 || waitpid(e->pid, &status, WNOHANG) != e->pid)
                return;
        e->pid = 0;
        if (e->stopping) {
                finish(e);
                return;
        }
        omr_log(LOG_ERR, "redis", "embedded redis-server exited %s=%d; restarting in 1s",
                WIFEXITED(status) ? "status" : "signal",
                WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
        struct timeval tv = {1, 0};
        evtimer_add(e->restart_ev, &tv);
}

static void on_kill(evutil_socket_t fd, short what, void *arg)
{
        struct omr_embedded_redis *e = arg;
        (void)fd;
        (void)what;
        if (e->pid > 0) {
                omr_log(LOG_WARNING, "redis", "embedded redis-server slow to stop; killing");
                kill(e->pid, SIGKILL);
        }
}

struct omr_embedded_redis *omr_embedded_redis_start(struct event_base *base,
                                                    const struct omr_conf_redis *conf)
{
        struct omr_embedded_redis *e = calloc(1, sizeof(*e));
        if (e == NULL)
                return NULL;
        e->magic = ER_MAGIC;
        e->base = base;
        e->server = strdup(conf->embedded_server);
        pick_dirs(e, conf);
        e->sigchld_ev = evsignal_new(base, SIGCHLD, on_sigchld, e);
        e->restart_ev = evtimer_new(base, on_restart, e);
        e->kill_ev = evtimer_new(base, on_kill, e);
        if (!e->server || !e->sigchld_ev || !e->restart_ev || !e->kill_ev ||
            evsignal_add(e->sigchld_ev, NULL) != 0)
                goto fail;
        if (strlen(e->socket) >= 108) {
                omr_log(LOG_ERR, "redis", "embedded redis socket path too long path=%s", e->socket);
                goto fail;
        }
        int rc = mkdir_p(e->dir, 0700);
        if (rc == 0)
                rc = mkdir_p(e->data_dir, 0700);
        if (rc != 0) {
                omr_log(LOG_ERR, "redis", "cannot create embedded redis dir=%s: %s", e->dir,
                        strerror(-rc));
                goto fail;
        }
        if (spawn(e) != 0)
                goto fail;
        return e;
fail:
        e->stopping = true;
        e->done = NULL;
        finish(e);
        return NULL;
}

const char *omr_embedded_redis_socket(const struct omr_embedded_redis *e)
{
        return e->socket;
}

void omr_embedded_redis_stop(struct omr_embedded_redis *e, void (*done)(void *arg), void *arg)
{
        OMR_MAGIC_CHECK(e, ER_MAGIC);
        e->stopping = true;
        e->done = done;
        e->done_arg = arg;
        evtimer_del(e->restart_ev);
        if (e->pid <= 0) {
                finish(e);
                return;
        }
        kill(e->pid, SIGTERM);
        struct timeval tv = {5, 0};
        evtimer_add(e->kill_ev, &tv);
}
