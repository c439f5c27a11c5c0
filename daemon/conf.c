/* conf.c — the configuration schema: YAML document → struct omr_conf,
 * defaults, validation, secret files. Runs at start and on SIGHUP, on the
 * loop thread, before anything uses the new conf. */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_yaml.h"
#include "omniroute/log.h"
#include "omniroute/text.h"

static void conf_defaults(struct omr_conf *c)
{
        c->log_level = LOG_INFO;
        c->http.host = strdup("127.0.0.1");
        c->http.port = 8080;
        c->http.max_body = 1 << 20;
        c->http.max_header = 32 << 10;
        c->http.idle_timeout_s = 30;
        c->http.max_connections = 4096;
        c->http.drain_timeout_ms = 10000;
        c->redis.kind = OMR_REDIS_EMBEDDED;
        c->redis.prefix = strdup("omr:");
        c->redis.command_timeout_ms = 2000;
        c->redis.dedup_ttl_s = 7 * 86400;
        c->redis.queue_maxlen = 1000000;
        c->redis.events_maxlen = 100000;
        c->redis.embedded_server = strdup("redis-server");
        c->api.timestamp_window_s = 300;
        c->routing.default_queue = strdup("general");
        c->routing.default_priority = OMR_PRIORITY_NORMAL;
        c->agents.heartbeat_timeout_ms = 60000;
        c->notify.give_up_after_ms = 86400000;
        c->ack.window_ms = 86400000;
        c->csat.window_ms = 3 * 86400000LL;
        c->notify.request_timeout_ms = 10000;
        c->notify.mail.starttls = OMR_STARTTLS_ENABLED;
        c->notify.mail.timeout_ms = 30000;
        c->outbound.give_up_after_ms = 10 * 60000;
        c->outbound.request_timeout_ms = 15000;
}

bool omr_conf_valid_queue_name(const char *name)
{
        size_t n = strlen(name);
        return n >= 1 && n <= 64 &&
               strspn(name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-") ==
                       n;
}

/* --- log ---------------------------------------------------------------- */

static int log_level(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        const char *s = cy_scalar(cy, v, "log.level");
        if (s == NULL)
                return -1;
        int l = omr_log_level_parse(s);
        if (l < 0) {
                cy_error(cy, v, "'log.level' must be error, warning, info or debug, got '%s'", s);
                return -1;
        }
        c->log_level = l;
        return 0;
}

static int sec_log(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {{"level", log_level}, {NULL, NULL}};
        return cy_mapping(cy, v, "log", keys, obj);
}

/* --- http --------------------------------------------------------------- */

static int parse_hostport(const char *s, char **host, int *port)
{
        const char *colon;
        char *end;
        if (*s == '[') {
                const char *close = strchr(s, ']');
                if (close == NULL || close[1] != ':')
                        return -1;
                colon = close + 1;
                *host = strndup(s + 1, (size_t)(close - s - 1));
        } else {
                colon = strrchr(s, ':');
                if (colon == NULL || colon == s || memchr(s, ':', (size_t)(colon - s)))
                        return -1;
                *host = strndup(s, (size_t)(colon - s));
        }
        errno = 0;
        long p = strtol(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end != '\0' || errno || p < 0 || p > 65535)
                return -1;
        *port = (int)p;
        return 0;
}

static int http_listen(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        char *host = NULL;
        const char *s = cy_scalar(cy, v, "http.listen");
        if (s == NULL)
                return -1;
        if (parse_hostport(s, &host, &c->http.port) != 0 || host == NULL || *host == '\0') {
                free(host);
                cy_error(cy, v, "'http.listen' must be host:port (port 0-65535), got '%s'", s);
                return -1;
        }
        free(c->http.host);
        c->http.host = host;
        return 0;
}

static int http_max_body(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_size(cy, v, "http.max_body", &c->http.max_body))
                return -1;
        if (c->http.max_body < 1024 || c->http.max_body > (64u << 20)) {
                cy_error(cy, v, "'http.max_body' must be between 1KiB and 64MiB");
                return -1;
        }
        return 0;
}

static int http_max_header(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_size(cy, v, "http.max_header", &c->http.max_header))
                return -1;
        if (c->http.max_header < 4096 || c->http.max_header > (1u << 20)) {
                cy_error(cy, v, "'http.max_header' must be between 4KiB and 1MiB");
                return -1;
        }
        return 0;
}

static int http_idle(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        int64_t ms;
        if (cy_duration_ms(cy, v, "http.idle_timeout", &ms))
                return -1;
        if (ms < 1000 || ms > 3600000) {
                cy_error(cy, v, "'http.idle_timeout' must be between 1s and 1h");
                return -1;
        }
        c->http.idle_timeout_s = ms / 1000;
        return 0;
}

static int http_max_conn(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        long long n;
        if (cy_int(cy, v, "http.max_connections", 1, 1000000, &n))
                return -1;
        c->http.max_connections = (unsigned)n;
        return 0;
}

static int http_drain(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return cy_duration_ms(cy, v, "http.drain_timeout", &c->http.drain_timeout_ms);
}

static int sec_http(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"listen", http_listen},
                {"max_body", http_max_body},
                {"max_header", http_max_header},
                {"idle_timeout", http_idle},
                {"max_connections", http_max_conn},
                {"drain_timeout", http_drain},
                {NULL, NULL},
        };
        return cy_mapping(cy, v, "http", keys, obj);
}

/* --- redis -------------------------------------------------------------- */

static int parse_redis_url(struct omr_conf_redis *r, const char *url)
{
        char *end;
        if (strncmp(url, "unix://", 7) == 0) {
                const char *path = url + 7;
                const char *q = strchr(path, '?');
                if (*path != '/')
                        return -1;
                r->unix_path = q ? strndup(path, (size_t)(q - path)) : strdup(path);
                if (q) {
                        if (strncmp(q, "?db=", 4) != 0)
                                return -1;
                        long db = strtol(q + 4, &end, 10);
                        if (q[4] == '\0' || *end || db < 0 || db > 1000)
                                return -1;
                        r->db = (int)db;
                }
                r->kind = OMR_REDIS_UNIX;
                return 0;
        }
        if (strncmp(url, "redis://", 8) != 0)
                return -1;
        const char *hp = url + 8;
        if (strchr(hp, '@'))
                return -2; /* credentials in the URL: refused, they belong in a file */
        const char *slash = strchr(hp, '/');
        char *hostport = slash ? strndup(hp, (size_t)(slash - hp)) : strdup(hp);
        if (hostport == NULL)
                return -1;
        int rc = 0;
        if (strchr(hostport, ':') || hostport[0] == '[') {
                rc = parse_hostport(hostport, &r->host, &r->port);
        } else {
                r->host = strdup(hostport);
                r->port = 6379;
        }
        free(hostport);
        if (rc != 0 || r->host == NULL || *r->host == '\0' || r->port == 0)
                return -1;
        if (slash && slash[1]) {
                long db = strtol(slash + 1, &end, 10);
                if (*end || db < 0 || db > 1000)
                        return -1;
                r->db = (int)db;
        }
        r->kind = OMR_REDIS_TCP;
        return 0;
}

static int redis_url(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_string(cy, v, "redis.url", &c->redis.url))
                return -1;
        int rc = parse_redis_url(&c->redis, c->redis.url);
        if (rc == -2)
                cy_error(cy, v, "'redis.url' must not carry credentials: use redis.password_file");
        else if (rc != 0)
                cy_error(cy, v,
                         "'redis.url' must be redis://host[:port][/db] or unix:///path[?db=N], "
                         "got '%s'",
                         c->redis.url);
        return rc ? -1 : 0;
}

static int redis_password_file(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        free(c->redis.password);
        c->redis.password = NULL;
        return cy_secret(cy, v, "redis.password_file", &c->redis.password, NULL);
}

static int redis_prefix(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_string(cy, v, "redis.prefix", &c->redis.prefix))
                return -1;
        if (strlen(c->redis.prefix) > 64 || strpbrk(c->redis.prefix, " {}\r\n")) {
                cy_error(cy, v,
                         "'redis.prefix' must be at most 64 characters without spaces or braces");
                return -1;
        }
        return 0;
}

static int redis_timeout(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_duration_ms(cy, v, "redis.command_timeout", &c->redis.command_timeout_ms))
                return -1;
        if (c->redis.command_timeout_ms < 10 || c->redis.command_timeout_ms > 60000) {
                cy_error(cy, v, "'redis.command_timeout' must be between 10ms and 60s");
                return -1;
        }
        return 0;
}

static int redis_dedup_ttl(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        int64_t ms;
        if (cy_duration_ms(cy, v, "redis.dedup_ttl", &ms))
                return -1;
        if (ms < 60000) {
                cy_error(cy, v,
                         "'redis.dedup_ttl' must be at least 1m (providers retry for hours)");
                return -1;
        }
        c->redis.dedup_ttl_s = ms / 1000;
        return 0;
}

static int redis_queue_maxlen(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return cy_int(cy, v, "redis.queue_maxlen", 1000, 1000000000000LL, &c->redis.queue_maxlen);
}

static int redis_events_maxlen(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return cy_int(cy, v, "redis.events_maxlen", 1000, 1000000000000LL, &c->redis.events_maxlen);
}

static int redis_embedded_server(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        return cy_string(cy, v, "redis.embedded_server", &c->redis.embedded_server);
}

static int redis_embedded_dir(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        if (cy_string(cy, v, "redis.embedded_dir", &c->redis.embedded_dir))
                return -1;
        if (c->redis.embedded_dir[0] != '/') {
                cy_error(cy, v, "'redis.embedded_dir' must be an absolute path");
                return -1;
        }
        return 0;
}

static int sec_redis(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"url", redis_url},
                {"password_file", redis_password_file},
                {"prefix", redis_prefix},
                {"command_timeout", redis_timeout},
                {"dedup_ttl", redis_dedup_ttl},
                {"queue_maxlen", redis_queue_maxlen},
                {"events_maxlen", redis_events_maxlen},
                {"embedded_server", redis_embedded_server},
                {"embedded_dir", redis_embedded_dir},
                {NULL, NULL},
        };
        return cy_mapping(cy, v, "redis", keys, obj);
}

/* --- connectors.api ----------------------------------------------------- */

static int adapter_name(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_adapter *a = obj;
        if (cy_string(cy, v, "adapters[].name", &a->name))
                return -1;
        if (!omr_conf_valid_queue_name(a->name)) {
                cy_error(cy, v, "adapter name '%s' must be 1-64 of [A-Za-z0-9_.-]", a->name);
                return -1;
        }
        return 0;
}

static int adapter_secret(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_adapter *a = obj;
        free(a->secret);
        a->secret = NULL;
        return cy_secret(cy, v, "secret_file", (char **)&a->secret, &a->secret_len);
}

static int adapter_require_ts(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_adapter *a = obj;
        return cy_bool(cy, v, "require_timestamp", &a->require_timestamp);
}

static int api_adapters(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"name", adapter_name},
                {"secret_file", adapter_secret},
                {"require_timestamp", adapter_require_ts},
                {NULL, NULL},
        };
        struct omr_conf *c = obj;
        if (v->type != YAML_SEQUENCE_NODE) {
                cy_error(cy, v, "'connectors.api.adapters' must be a list");
                return -1;
        }
        size_t n = (size_t)(v->data.sequence.items.top - v->data.sequence.items.start);
        c->api.adapters = calloc(n ? n : 1, sizeof(*c->api.adapters));
        if (c->api.adapters == NULL)
                return -1;
        int rc = 0;
        for (size_t i = 0; i < n; i++) {
                yaml_node_t *item =
                        yaml_document_get_node(&cy->doc, v->data.sequence.items.start[i]);
                struct omr_conf_adapter *a = &c->api.adapters[c->api.n_adapters++];
                a->line = cy_line(item);
                if (cy_mapping(cy, item, "connectors.api.adapters[]", keys, a) != 0) {
                        rc = -1;
                        continue;
                }
                if (a->name == NULL || a->secret == NULL) {
                        cy_error(cy, item, "an adapter needs both 'name' and 'secret_file'");
                        rc = -1;
                        continue;
                }
                for (size_t k = 0; k + 1 < c->api.n_adapters; k++) {
                        if (c->api.adapters[k].name &&
                            strcmp(c->api.adapters[k].name, a->name) == 0) {
                                cy_error(cy, item,
                                         "adapter '%s' is defined twice (first at line %d)",
                                         a->name, c->api.adapters[k].line);
                                rc = -1;
                        }
                }
        }
        return rc;
}

static int api_window(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf *c = obj;
        int64_t ms;
        if (cy_duration_ms(cy, v, "connectors.api.timestamp_window", &ms))
                return -1;
        if (ms < 1000 || ms > 86400000) {
                cy_error(cy, v, "'connectors.api.timestamp_window' must be between 1s and 1d");
                return -1;
        }
        c->api.timestamp_window_s = ms / 1000;
        return 0;
}

static int conn_api(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"adapters", api_adapters}, {"timestamp_window", api_window}, {NULL, NULL}};
        return cy_mapping(cy, v, "connectors.api", keys, obj);
}

static int sec_connectors(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {{"api", conn_api},
                                             {"twilio", omr_conf_sec_twilio},
                                             {"vonage", omr_conf_sec_vonage},
                                             {"email", omr_conf_sec_email},
                                             {"chat", omr_conf_sec_chat},
                                             {"mastodon", omr_conf_sec_mastodon},
                                             {"x", omr_conf_sec_x},
                                             {"meta", omr_conf_sec_meta},
                                             {NULL, NULL}};
        return cy_mapping(cy, v, "connectors", keys, obj);
}

/* --- load / free -------------------------------------------------------- */

static const struct cy_key top_keys[] = {
        {"log", sec_log},
        {"http", sec_http},
        {"redis", sec_redis},
        {"connectors", sec_connectors},
        {"routing", omr_conf_sec_routing},
        {"agents", omr_conf_sec_agents},
        {"notify", omr_conf_sec_notify},
        {"calendars", omr_conf_sec_calendars},
        {"sla", omr_conf_sec_sla},
        {"api", omr_conf_sec_api},
        {"outbound", omr_conf_sec_outbound},
        {NULL, NULL},
};

struct omr_conf *omr_conf_load_buffer(const char *path, const char *buf, size_t len,
                                      struct omr_conf_errors *errs)
{
        yaml_parser_t parser;
        struct cy cy = {.path = path, .errs = errs};
        struct omr_conf *c = calloc(1, sizeof(*c));

        errs->n = 0;
        if (c == NULL || !yaml_parser_initialize(&parser)) {
                free(c);
                snprintf(errs->msg[errs->n++], sizeof(errs->msg[0]), "%s:0: out of memory", path);
                return NULL;
        }
        conf_defaults(c);
        c->path = strdup(path);
        yaml_parser_set_input_string(&parser, (const unsigned char *)buf, len);
        if (!yaml_parser_load(&parser, &cy.doc)) {
                snprintf(errs->msg[errs->n++], sizeof(errs->msg[0]), "%s:%zu: %s %s", path,
                         parser.problem_mark.line + 1, parser.problem ? parser.problem : "error",
                         parser.context ? parser.context : "");
                yaml_parser_delete(&parser);
                omr_conf_free(c);
                return NULL;
        }
        yaml_node_t *root = yaml_document_get_root_node(&cy.doc);
        if (root != NULL)
                cy_mapping(&cy, root, "(top level)", top_keys, c);
        /* A file with several YAML documents is almost certainly a mistake. */
        yaml_document_t extra;
        if (errs->n == 0 && yaml_parser_load(&parser, &extra)) {
                if (yaml_document_get_root_node(&extra) != NULL)
                        cy_error(&cy, yaml_document_get_root_node(&extra),
                                 "only one YAML document is allowed");
                yaml_document_delete(&extra);
        }
        yaml_document_delete(&cy.doc);
        yaml_parser_delete(&parser);
        if (errs->n == 0 && c->path) {
                omr_conf_resolve_routing(c, errs);
                omr_conf_resolve_sla(c, errs);
        }
        if (errs->n > 0 || c->path == NULL) {
                omr_conf_free(c);
                return NULL;
        }
        return c;
}

struct omr_conf *omr_conf_load(const char *path, struct omr_conf_errors *errs)
{
        errs->n = 0;
        FILE *f = fopen(path, "re");
        if (f == NULL) {
                snprintf(errs->msg[errs->n++], sizeof(errs->msg[0]), "%s:0: cannot open: %s", path,
                         strerror(errno));
                return NULL;
        }
        char *buf = NULL;
        size_t len = 0, cap = 0;
        for (;;) {
                if (len == cap) {
                        cap = cap ? 2 * cap : 8192;
                        char *nb = cap <= (4u << 20) ? realloc(buf, cap) : NULL;
                        if (nb == NULL) {
                                snprintf(errs->msg[errs->n++], sizeof(errs->msg[0]),
                                         "%s:0: larger than 4MiB or out of memory", path);
                                free(buf);
                                fclose(f);
                                return NULL;
                        }
                        buf = nb;
                }
                size_t n = fread(buf + len, 1, cap - len, f);
                if (n == 0)
                        break;
                len += n;
        }
        fclose(f);
        struct omr_conf *c = omr_conf_load_buffer(path, buf ? buf : "", len, errs);
        free(buf);
        return c;
}

void omr_conf_free(struct omr_conf *c)
{
        if (c == NULL)
                return;
        free(c->path);
        free(c->http.host);
        free(c->redis.url);
        free(c->redis.host);
        free(c->redis.unix_path);
        if (c->redis.password) {
                explicit_bzero(c->redis.password, strlen(c->redis.password));
                free(c->redis.password);
        }
        free(c->redis.prefix);
        free(c->redis.embedded_server);
        free(c->redis.embedded_dir);
        for (size_t i = 0; i < c->api.n_adapters; i++) {
                struct omr_conf_adapter *a = &c->api.adapters[i];
                free(a->name);
                if (a->secret) {
                        explicit_bzero(a->secret, a->secret_len);
                        free(a->secret);
                }
        }
        free(c->api.adapters);
        omr_conf_free_routing(c);
        omr_conf_free_notify(c);
        omr_conf_free_sla(c);
        omr_conf_free_outbound(c);
        omr_conf_free_email(c);
        omr_conf_free_chat(c);
        omr_conf_free_social(c);
        omr_conf_free_meta(c);
        free(c);
}

const struct omr_conf_adapter *omr_conf_adapter(const struct omr_conf *c, const char *name)
{
        for (size_t i = 0; i < c->api.n_adapters; i++)
                if (strcmp(c->api.adapters[i].name, name) == 0)
                        return &c->api.adapters[i];
        return NULL;
}

static bool str_differs(const char *a, const char *b)
{
        return (a == NULL) != (b == NULL) || (a && strcmp(a, b) != 0);
}

const char *omr_conf_reload_blocker(const struct omr_conf *cur, const struct omr_conf *next)
{
        const struct omr_conf_http *a = &cur->http, *b = &next->http;
        if (str_differs(a->host, b->host) || a->port != b->port)
                return "http.listen";
        if (a->max_body != b->max_body)
                return "http.max_body";
        if (a->max_header != b->max_header)
                return "http.max_header";
        if (a->idle_timeout_s != b->idle_timeout_s)
                return "http.idle_timeout";
        if (a->max_connections != b->max_connections)
                return "http.max_connections";
        const struct omr_conf_redis *r = &cur->redis, *s = &next->redis;
        if (r->kind != s->kind || str_differs(r->url, s->url))
                return "redis.url";
        if (str_differs(r->password, s->password))
                return "redis.password_file";
        if (str_differs(r->prefix, s->prefix))
                return "redis.prefix";
        if (str_differs(r->embedded_dir, s->embedded_dir) ||
            str_differs(r->embedded_server, s->embedded_server))
                return "redis.embedded_dir";
        if (str_differs(cur->outbound.consumer, next->outbound.consumer))
                return "outbound.consumer"; /* the outbox reader is named once, at start */
        return NULL;
}
