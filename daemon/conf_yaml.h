/* conf_yaml.h — typed reads from a libyaml document, each failure reported
 * once as "file:line: message". The schema itself is in conf.c. */
#ifndef OMR_CONF_YAML_H
#define OMR_CONF_YAML_H

#include <stdbool.h>
#include <stdint.h>
#include <yaml.h>

#include "omniroute/conf.h"

struct cy {
        yaml_document_t doc;
        const char *path;
        struct omr_conf_errors *errs;
};

typedef int (*cy_fn)(struct cy *cy, yaml_node_t *value, void *obj);

struct cy_key {
        const char *key;
        cy_fn fn;
};

void cy_error(struct cy *cy, const yaml_node_t *n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
int cy_line(const yaml_node_t *n);

/* Walks a mapping, calling the table entry for each key; unknown keys and
 * non-scalar keys are errors. Continues after errors to report them all;
 * returns -1 if any occurred. A NULL node (absent section) is fine. */
int cy_mapping(struct cy *cy, yaml_node_t *map, const char *section, const struct cy_key *keys,
               void *obj);

const char *cy_scalar(struct cy *cy, yaml_node_t *n, const char *what);
int cy_string(struct cy *cy, yaml_node_t *n, const char *what, char **out);
int cy_int(struct cy *cy, yaml_node_t *n, const char *what, long long min, long long max,
           long long *out);
int cy_bool(struct cy *cy, yaml_node_t *n, const char *what, bool *out);
int cy_duration_ms(struct cy *cy, yaml_node_t *n, const char *what, int64_t *out);
/* A duration between min and max (written as durations, "100ms", "1d"). */
int cy_duration_within(struct cy *cy, yaml_node_t *n, const char *what, const char *min,
                       const char *max, int64_t *out);
int cy_size(struct cy *cy, yaml_node_t *n, const char *what, size_t *out);
/* A scalar or a sequence of scalars, as a NULL-free array of copies. */
int cy_string_list(struct cy *cy, yaml_node_t *n, const char *what, char ***out, size_t *n_out);

/* A sequence of mappings with a unique `name` ([A-Za-z0-9_.-]{1,64}) into
 * a new array of item_size elements (conf_outbound.c). */
struct seq_spec {
        const char *section;
        const struct cy_key *keys;
        size_t item_size;
        size_t name_offset, line_offset;
        const char *required; /* sentence for a missing required member */
        bool (*complete)(const void *item);
};
int cy_named_seq(struct cy *cy, yaml_node_t *v, const struct seq_spec *sp, void **items,
                 size_t *n_items);

/* Reads a secret file named by the scalar n (relative paths: systemd's
 * $CREDENTIALS_DIRECTORY first, then beside the config file): content
 * without trailing newlines, at most 4 KiB, not empty. */
int cy_secret(struct cy *cy, yaml_node_t *n, const char *what, char **out, size_t *out_len);

/* Sections defined in conf_outbound.c. */
int omr_conf_sec_api(struct cy *cy, yaml_node_t *v, void *conf);
int omr_conf_sec_outbound(struct cy *cy, yaml_node_t *v, void *conf);
int omr_conf_sec_twilio(struct cy *cy, yaml_node_t *v, void *conf);
int omr_conf_sec_vonage(struct cy *cy, yaml_node_t *v, void *conf);
void omr_conf_free_outbound(struct omr_conf *c);
/* Sections defined in conf_chat.c. */
int omr_conf_sec_chat(struct cy *cy, yaml_node_t *v, void *conf);
void omr_conf_free_chat(struct omr_conf *c);
/* Sections defined in conf_email.c. */
int omr_conf_sec_mastodon(struct cy *cy, yaml_node_t *v, void *conf);
int omr_conf_sec_x(struct cy *cy, yaml_node_t *v, void *conf);
void omr_conf_free_social(struct omr_conf *c);
int omr_conf_sec_meta(struct cy *cy, yaml_node_t *v, void *conf);
void omr_conf_free_meta(struct omr_conf *c);

int omr_conf_sec_email(struct cy *cy, yaml_node_t *v, void *conf);
void omr_conf_free_email(struct omr_conf *c);
/* Sections defined in conf_routing.c. */
int omr_conf_sec_routing(struct cy *cy, yaml_node_t *v, void *conf);
int omr_conf_sec_agents(struct cy *cy, yaml_node_t *v, void *conf);
void omr_conf_free_routing(struct omr_conf *c);
int omr_conf_sec_calendars(struct cy *cy, yaml_node_t *v, void *conf);
/* Cross-references checked once the whole file is read. */
int omr_conf_resolve_routing(struct omr_conf *c, struct omr_conf_errors *errs);
/* Sections defined in conf_sla.c. */
int omr_conf_sec_sla(struct cy *cy, yaml_node_t *v, void *conf);
int omr_conf_resolve_sla(struct omr_conf *c, struct omr_conf_errors *errs);
void omr_conf_free_sla(struct omr_conf *c);
/* Sections defined in conf_notify.c. */
int omr_conf_sec_notify(struct cy *cy, yaml_node_t *v, void *conf);
void omr_conf_free_notify(struct omr_conf *c);

/* Pure parsers behind the typed reads (also used by tests). */
int omr_parse_duration_ms(const char *s, int64_t *out);
int omr_parse_size(const char *s, size_t *out);

#endif
