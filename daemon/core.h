/* core.h (daemon-private) — lifecycle of the core object for main.c. */
#ifndef OMR_DAEMON_CORE_H
#define OMR_DAEMON_CORE_H

#include "omniroute/core.h"

/* Takes ownership of conf. NULL on failure (logged). */
struct omr_core *omr_core_new(struct event_base *base, struct omr_conf *conf);
/* Embedded Redis, store, HTTP, connectors; then READY=1. 0 or -errno. */
int omr_core_start(struct omr_core *core);
/* SIGHUP: load the file again; swap only if valid and reloadable. */
void omr_core_reload(struct omr_core *core);
/* SIGTERM/SIGINT: stop intake, drain, close; the loop exits when done. */
void omr_core_shutdown(struct omr_core *core);
void omr_core_free(struct omr_core *core);

#endif
