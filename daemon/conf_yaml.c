/* conf_yaml.c — typed reads over a libyaml document with file:line errors. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sys/stat.h>
#include <unistd.h>

#include "conf_yaml.h"
#include "omniroute/log.h"

#define SECRET_MAX 4096

int cy_line(const yaml_node_t *n)
{
        return n ? (int)n->start_mark.line + 1 : 0;
}

void cy_error(struct cy *cy, const yaml_node_t *n, const char *fmt, ...)
{
        if (cy->errs->n >= OMR_CONF_MAX_ERRORS)
                return;
        char *dst = cy->errs->msg[cy->errs->n++];
        size_t cap = sizeof(cy->errs->msg[0]);
        int k = snprintf(dst, cap, "%s:%d: ", cy->path, cy_line(n));
        if (k < 0 || (size_t)k >= cap)
                return;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(dst + k, cap - (size_t)k, fmt, ap);
        va_end(ap);
}

static const char *kind_name(const yaml_node_t *n)
{
        switch (n->type) {
        case YAML_SCALAR_NODE:
                return "a scalar";
        case YAML_SEQUENCE_NODE:
                return "a list";
        case YAML_MAPPING_NODE:
                return "a mapping";
        default:
                return "nothing";
        }
}

int cy_mapping(struct cy *cy, yaml_node_t *map, const char *section, const struct cy_key *keys,
               void *obj)
{
        int rc = 0;
        if (map == NULL)
                return 0;
        if (map->type == YAML_SCALAR_NODE && map->data.scalar.length == 0)
                return 0; /* "section:" with nothing under it */
        if (map->type != YAML_MAPPING_NODE) {
                cy_error(cy, map, "expected a mapping for '%s', got %s", section, kind_name(map));
                return -1;
        }
        for (yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
             p++) {
                yaml_node_t *k = yaml_document_get_node(&cy->doc, p->key);
                yaml_node_t *v = yaml_document_get_node(&cy->doc, p->value);
                if (k == NULL || k->type != YAML_SCALAR_NODE) {
                        cy_error(cy, k, "keys in '%s' must be plain words", section);
                        rc = -1;
                        continue;
                }
                const char *name = (const char *)k->data.scalar.value;
                /* YAML leaves duplicate keys to the application; a second
                 * value silently winning is a classic config bug. */
                bool dup = false;
                for (yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p && !dup; q++) {
                        yaml_node_t *qk = yaml_document_get_node(&cy->doc, q->key);
                        dup = qk && qk->type == YAML_SCALAR_NODE &&
                              strcmp((const char *)qk->data.scalar.value, name) == 0;
                }
                if (dup) {
                        cy_error(cy, k, "key '%s' appears twice in '%s'", name, section);
                        rc = -1;
                        continue;
                }
                const struct cy_key *e = keys;
                while (e->key && strcmp(e->key, name) != 0)
                        e++;
                if (e->key == NULL) {
                        cy_error(cy, k, "unknown key '%s' in '%s'", name, section);
                        rc = -1;
                        continue;
                }
                if (e->fn(cy, v, obj) != 0)
                        rc = -1;
        }
        return rc;
}

const char *cy_scalar(struct cy *cy, yaml_node_t *n, const char *what)
{
        if (n == NULL || n->type != YAML_SCALAR_NODE) {
                cy_error(cy, n, "'%s' must be a single value, got %s", what,
                         n ? kind_name(n) : "nothing");
                return NULL;
        }
        return (const char *)n->data.scalar.value;
}

int cy_string(struct cy *cy, yaml_node_t *n, const char *what, char **out)
{
        const char *s = cy_scalar(cy, n, what);
        if (s == NULL)
                return -1;
        if (strlen(s) != n->data.scalar.length) {
                cy_error(cy, n, "'%s' contains a NUL byte", what);
                return -1;
        }
        char *copy = strdup(s);
        if (copy == NULL)
                return -1;
        free(*out);
        *out = copy;
        return 0;
}

int cy_int(struct cy *cy, yaml_node_t *n, const char *what, long long min, long long max,
           long long *out)
{
        const char *s = cy_scalar(cy, n, what);
        char *end;
        if (s == NULL)
                return -1;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (*s == '\0' || *end != '\0' || errno || v < min || v > max) {
                cy_error(cy, n, "'%s' must be a whole number from %lld to %lld, got '%s'", what,
                         min, max, s);
                return -1;
        }
        *out = v;
        return 0;
}

int cy_bool(struct cy *cy, yaml_node_t *n, const char *what, bool *out)
{
        const char *s = cy_scalar(cy, n, what);
        if (s == NULL)
                return -1;
        if (!strcmp(s, "true") || !strcmp(s, "yes") || !strcmp(s, "on")) {
                *out = true;
        } else if (!strcmp(s, "false") || !strcmp(s, "no") || !strcmp(s, "off")) {
                *out = false;
        } else {
                cy_error(cy, n, "'%s' must be true or false, got '%s'", what, s);
                return -1;
        }
        return 0;
}

int omr_parse_duration_ms(const char *s, int64_t *out)
{
        static const struct {
                const char *unit;
                int64_t ms;
        } units[] = {{"ms", 1},      {"s", 1000},     {"m", 60000},
                     {"h", 3600000}, {"d", 86400000}, {"", 1000}};
        char *end;
        if (!isdigit((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (errno)
                return -EINVAL;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (strcmp(end, units[i].unit) == 0) {
                        if (v > INT64_MAX / units[i].ms)
                                return -ERANGE;
                        *out = v * units[i].ms;
                        return 0;
                }
        }
        return -EINVAL;
}

int omr_parse_size(const char *s, size_t *out)
{
        static const struct {
                const char *unit;
                unsigned long long mult;
        } units[] = {{"", 1},          {"B", 1},       {"KiB", 1024},   {"MiB", 1 << 20},
                     {"GiB", 1 << 30}, {"kB", 1000},   {"MB", 1000000}, {"GB", 1000000000},
                     {"K", 1024},      {"M", 1 << 20}, {"G", 1 << 30}};
        char *end;
        if (!isdigit((unsigned char)*s))
                return -EINVAL;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno)
                return -EINVAL;
        while (*end == ' ')
                end++;
        for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
                if (strcmp(end, units[i].unit) == 0) {
                        if (v > SIZE_MAX / units[i].mult)
                                return -ERANGE;
                        *out = (size_t)(v * units[i].mult);
                        return 0;
                }
        }
        return -EINVAL;
}

int cy_duration_ms(struct cy *cy, yaml_node_t *n, const char *what, int64_t *out)
{
        const char *s = cy_scalar(cy, n, what);
        if (s == NULL)
                return -1;
        if (omr_parse_duration_ms(s, out) != 0) {
                cy_error(cy, n, "'%s' must be a duration like 250ms, 90s, 5m, 2h or 1d, got '%s'",
                         what, s);
                return -1;
        }
        return 0;
}

int cy_duration_within(struct cy *cy, yaml_node_t *n, const char *what, const char *min,
                       const char *max, int64_t *out)
{
        int64_t lo = 0, hi = 0;
        if (cy_duration_ms(cy, n, what, out))
                return -1;
        if (omr_parse_duration_ms(min, &lo) != 0 || omr_parse_duration_ms(max, &hi) != 0)
                omr_panic("conf", "bad bounds for %s", what);
        if (*out < lo || *out > hi) {
                cy_error(cy, n, "'%s' must be between %s and %s", what, min, max);
                return -1;
        }
        return 0;
}

int cy_size(struct cy *cy, yaml_node_t *n, const char *what, size_t *out)
{
        const char *s = cy_scalar(cy, n, what);
        if (s == NULL)
                return -1;
        if (omr_parse_size(s, out) != 0) {
                cy_error(cy, n, "'%s' must be a size like 65536, 64KiB or 1MiB, got '%s'", what, s);
                return -1;
        }
        return 0;
}

int cy_string_list(struct cy *cy, yaml_node_t *n, const char *what, char ***out, size_t *n_out)
{
        yaml_node_item_t *start, *top;
        yaml_node_item_t single;
        if (n == NULL)
                return 0;
        if (n->type == YAML_SCALAR_NODE) {
                /* A lone value is a list of one: `channel: sms`. */
                single = 0;
                start = &single;
                top = start + 1;
        } else if (n->type == YAML_SEQUENCE_NODE) {
                start = n->data.sequence.items.start;
                top = n->data.sequence.items.top;
        } else {
                cy_error(cy, n, "'%s' must be a list of values, got %s", what, kind_name(n));
                return -1;
        }
        size_t count = (size_t)(top - start);
        char **list = calloc(count ? count : 1, sizeof(*list));
        if (list == NULL)
                return -1;
        int rc = 0;
        for (size_t i = 0; i < count; i++) {
                yaml_node_t *item = n->type == YAML_SCALAR_NODE
                                            ? n
                                            : yaml_document_get_node(&cy->doc, start[i]);
                if (cy_string(cy, item, what, &list[i]) != 0)
                        rc = -1;
        }
        for (size_t i = 0; i < *n_out; i++)
                free((*out)[i]);
        free(*out);
        *out = list;
        *n_out = count;
        return rc;
}

/* --- secrets ------------------------------------------------------------ */

/* Relative paths: systemd's credentials directory first (LoadCredential=),
 * else beside the config file. */
static char *resolve_secret_path(const char *conf_path, const char *file)
{
        char buf[PATH_MAX];
        if (file[0] == '/')
                return strdup(file);
        const char *creds = getenv("CREDENTIALS_DIRECTORY");
        if (creds && *creds) {
                snprintf(buf, sizeof(buf), "%s/%s", creds, file);
                if (access(buf, F_OK) == 0)
                        return strdup(buf);
        }
        char *copy = strdup(conf_path);
        if (copy == NULL)
                return NULL;
        snprintf(buf, sizeof(buf), "%s/%s", dirname(copy), file);
        free(copy);
        return strdup(buf);
}

int cy_secret(struct cy *cy, yaml_node_t *v, const char *what, char **out, size_t *out_len)
{
        char *file = NULL;
        if (cy_string(cy, v, what, &file))
                return -1;
        char *path = resolve_secret_path(cy->path, file);
        free(file);
        if (path == NULL)
                return -1;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) {
                cy_error(cy, v, "cannot read %s '%s': %s", what, path, strerror(errno));
                free(path);
                return -1;
        }
        struct stat st;
        if (fstat(fd, &st) == 0 && (st.st_mode & 0077) != 0)
                omr_log(LOG_WARNING, "conf", "secret file is readable by group or others path=%s",
                        path);
        char *buf = malloc(SECRET_MAX + 1);
        ssize_t n = buf ? read(fd, buf, SECRET_MAX + 1) : -1;
        close(fd);
        if (n < 0 || n > SECRET_MAX) {
                cy_error(cy, v, "cannot read %s '%s': %s", what, path,
                         n < 0 ? strerror(errno) : "larger than 4096 bytes");
                free(buf);
                free(path);
                return -1;
        }
        while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
                n--;
        buf[n] = '\0';
        if (n == 0) {
                cy_error(cy, v, "%s '%s' is empty", what, path);
                free(buf);
                free(path);
                return -1;
        }
        free(path);
        *out = buf;
        if (out_len)
                *out_len = (size_t)n;
        return 0;
}
