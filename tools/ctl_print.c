/* ctl_print.c — omniroutectl's output: the daemon's JSON as it is
 * (--json), or agents, conversations and messages for a person at a
 * terminal. Everything that came from customers or the daemon passes
 * through ctl_put_safe(), so no control sequence reaches the terminal. */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

#define UNANSWERED_MAX 10 /* customer messages shown after "next" */

void ctl_print_json(const json_t *j)
{
        if (j)
                json_dumpf(j, stdout, JSON_INDENT(2));
        else
                fputs("null", stdout);
        fputc('\n', stdout);
}

/* How many bytes at p make a control character (C0, DEL, or C1 encoded in
 * UTF-8 as C2 80..9F, which some terminals obey too); 0 for anything else
 * and, when keep_lines, for '\n' and '\t'. */
static size_t control_len(const unsigned char *p, bool keep_lines)
{
        if (keep_lines && (*p == '\n' || *p == '\t'))
                return 0;
        if (*p < 0x20 || *p == 0x7f)
                return 1;
        return p[0] == 0xC2 && p[1] >= 0x80 && p[1] <= 0x9F ? 2 : 0;
}

/* s, control characters as '?', indent after each newline. */
static void put_text(FILE *f, const char *s, const char *indent)
{
        for (const unsigned char *p = (const unsigned char *)s; *p;) {
                size_t n = control_len(p, true);
                fputc(n ? '?' : *p, f);
                if (*p == '\n' && indent)
                        fputs(indent, f);
                p += n ? n : 1;
        }
}

void ctl_put_safe(FILE *f, const char *s)
{
        put_text(f, s, NULL);
}

void ctl_format_ms(int64_t ms, char *buf, size_t size)
{
        time_t t = (time_t)(ms / 1000);
        struct tm tm;
        if (localtime_r(&t, &tm) == NULL || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "%lld", (long long)ms);
}

static const char *str(const json_t *obj, const char *key)
{
        return json_string_value(json_object_get(obj, key));
}

/* s sanitised as ctl_put_safe() would print it, or "-" when NULL/empty;
 * malloc'd (NULL when out of memory). */
static char *safe_dup(const char *s)
{
        const unsigned char *p = (const unsigned char *)(s && *s ? s : "-");
        char *out = malloc(strlen((const char *)p) + 1), *o = out;
        while (out && *p) {
                size_t n = control_len(p, false);
                *o++ = n ? '?' : (char)*p;
                p += n ? n : 1;
        }
        if (out)
                *o = '\0';
        return out;
}

/* The strings of an array, comma separated, or "-" (malloc'd). */
static char *join(const json_t *arr)
{
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        if (m == NULL)
                return NULL;
        size_t i;
        const json_t *v;
        json_array_foreach(arr, i, v)
        {
                if (json_string_value(v))
                        fprintf(m, "%s%s", ftell(m) > 0 ? ", " : "", json_string_value(v));
        }
        fclose(m);
        char *out = safe_dup(buf);
        free(buf);
        return out;
}

/* "chat 0/3, sms 1/5": the load against the capacity of each channel. */
static char *load_text(const json_t *agent)
{
        const json_t *cap = json_object_get(agent, "capacity"),
                     *load = json_object_get(agent, "load");
        char *buf = NULL;
        size_t len = 0;
        FILE *m = open_memstream(&buf, &len);
        if (m == NULL)
                return NULL;
        const char *ch;
        const json_t *v;
        json_object_foreach((json_t *)cap, ch, v)
        {
                fprintf(m, "%s%s %lld/%lld", ftell(m) > 0 ? ", " : "", ch,
                        json_integer_value(json_object_get(load, ch)), json_integer_value(v));
        }
        /* load on a channel without capacity (it was lowered to nothing) */
        json_object_foreach((json_t *)load, ch, v)
        {
                if (json_object_get(cap, ch) == NULL && json_integer_value(v))
                        fprintf(m, "%s%s %lld/0", ftell(m) > 0 ? ", " : "", ch,
                                json_integer_value(v));
        }
        fclose(m);
        char *out = safe_dup(buf);
        free(buf);
        return out;
}

/* "online until 2026-03-06 16:00:05" (malloc'd). */
static char *presence_text(const json_t *agent)
{
        const char *p = str(agent, "presence");
        json_t *exp = json_object_get(agent, "presence_expires_at");
        char when[32] = "", *out = NULL;
        if (json_is_integer(exp) && p && strcmp(p, "offline") != 0)
                ctl_format_ms(json_integer_value(exp), when, sizeof(when));
        if (asprintf(&out, "%s%s%s", p ? p : "-", *when ? " until " : "", when) < 0)
                return NULL;
        char *safe = safe_dup(out);
        free(out);
        return safe;
}

static void field(const char *label, const char *value)
{
        printf("  %-10s ", label);
        ctl_put_safe(stdout, value && *value ? value : "-");
        fputc('\n', stdout);
}

static void field_take(const char *label, char *value)
{
        field(label, value);
        free(value);
}

void ctl_print_agent(const json_t *agent)
{
        if (!json_is_object(agent)) {
                fputs("omniroutectl: the answer holds no agent\n", stderr);
                return;
        }
        fputs("agent ", stdout);
        ctl_put_safe(stdout, str(agent, "id") ? str(agent, "id") : "?");
        if (str(agent, "source")) {
                fputs(" (", stdout);
                ctl_put_safe(stdout, str(agent, "source"));
                fputc(')', stdout);
        }
        fputc('\n', stdout);
        field("name", str(agent, "name"));
        field("email", str(agent, "email"));
        field_take("presence", presence_text(agent));
        field_take("languages", join(json_object_get(agent, "languages")));
        field_take("skills", join(json_object_get(agent, "skills")));
        field_take("queues", join(json_object_get(agent, "queues")));
        field_take("teams", join(json_object_get(agent, "teams")));
        field_take("load", load_text(agent));
}

/* Display width of UTF-8 text, one column a code point (good enough for
 * names; wide CJK characters make a row a little off). */
static size_t width(const char *s)
{
        size_t w = 0;
        for (; *s; s++)
                w += ((unsigned char)*s & 0xC0) != 0x80;
        return w;
}

#define COLS 6

void ctl_print_agent_table(const json_t *agents)
{
        static const char *const head[COLS] = {"ID",   "NAME",   "PRESENCE",
                                               "LOAD", "QUEUES", "SOURCE"};
        size_t n = json_array_size(agents), w[COLS];
        char **cells = calloc((n + 1) * COLS, sizeof(*cells));
        if (cells == NULL) {
                fputs("omniroutectl: out of memory\n", stderr);
                return;
        }
        for (size_t k = 0; k < COLS; k++)
                cells[k] = strdup(head[k]);
        for (size_t i = 0; i < n; i++) {
                const json_t *a = json_array_get(agents, i);
                char **row = cells + (i + 1) * COLS;
                row[0] = safe_dup(str(a, "id"));
                row[1] = safe_dup(str(a, "name"));
                row[2] = presence_text(a);
                row[3] = load_text(a);
                row[4] = join(json_object_get(a, "queues"));
                row[5] = safe_dup(str(a, "source"));
        }
        for (size_t k = 0; k < COLS; k++) {
                w[k] = 0;
                for (size_t i = 0; i <= n; i++)
                        if (cells[i * COLS + k] && width(cells[i * COLS + k]) > w[k])
                                w[k] = width(cells[i * COLS + k]);
        }
        for (size_t i = 0; i <= n; i++) {
                for (size_t k = 0; k < COLS; k++) {
                        /* NULL: out of memory, an empty cell */
                        const char *s = cells[i * COLS + k] ? cells[i * COLS + k] : "";
                        if (k == COLS - 1)
                                printf("%s\n", s);
                        else
                                printf("%s%*s", s, (int)(w[k] - width(s) + 2), "");
                }
        }
        for (size_t i = 0; i < (n + 1) * COLS; i++)
                free(cells[i]);
        free(cells);
}

/* A time from the conversation hash: Unix ms as digits, else as it is. */
static void field_time(const char *label, const char *v)
{
        char when[32];
        if (v && *v && strspn(v, "0123456789") == strlen(v)) {
                ctl_format_ms(strtoll(v, NULL, 10), when, sizeof(when));
                v = when;
        }
        field(label, v);
}

void ctl_print_conversation(const json_t *conv, const char *via)
{
        if (!json_is_object(conv)) {
                fputs("omniroutectl: the answer holds no conversation\n", stderr);
                return;
        }
        fputs("conversation ", stdout);
        ctl_put_safe(stdout, str(conv, "id") ? str(conv, "id") : "?");
        fputs("  ", stdout);
        ctl_put_safe(stdout, str(conv, "status") ? str(conv, "status") : "?");
        if (via) {
                fputs(" (via ", stdout);
                ctl_put_safe(stdout, via);
                fputc(')', stdout);
        }
        fputc('\n', stdout);

        char *who = NULL;
        const char *name = str(conv, "customer_name"), *handle = str(conv, "customer_handle");
        if (asprintf(&who, "%s%s%s%s", name ? name : "", name && handle ? " <" : "",
                     handle ? handle : "", name && handle ? ">" : "") < 0)
                who = NULL;
        field_take("customer", who);
        const char *provider = str(conv, "provider");
        char *channel = NULL;
        if (asprintf(&channel, "%s%s%s%s", str(conv, "channel") ? str(conv, "channel") : "-",
                     provider ? " (" : "", provider ? provider : "", provider ? ")" : "") < 0)
                channel = NULL;
        field_take("channel", channel);
        field("language", str(conv, "language"));
        field("priority", str(conv, "priority"));
        field("queue", str(conv, "queue"));
        field("agent", str(conv, "agent_id"));
        field_time("created", str(conv, "created_at"));
        field_time("updated", str(conv, "updated_at"));
}

/* "  2026-03-06 16:00:01  customer: text", continuation lines indented. */
static void print_message(const json_t *m)
{
        const char *id = str(m, "id"), *dir = str(m, "direction");
        const char *text = str(m, "text");
        if (text == NULL)
                text = str(json_object_get(m, "message"), "text");
        char when[32] = "?";
        if (id)
                ctl_format_ms(strtoll(id, NULL, 10), when, sizeof(when));
        bool out = dir && strcmp(dir, "out") == 0;
        printf("  %s  ", when);
        ctl_put_safe(stdout,
                     out ? (str(m, "agent_id") ? str(m, "agent_id") : "agent") : "customer");
        fputs(": ", stdout);
        put_text(stdout, text ? text : "(no text)", "      ");
        fputc('\n', stdout);
}

void ctl_print_messages(const json_t *messages, bool unanswered_only)
{
        size_t n = json_array_size(messages), first = 0;
        if (unanswered_only) {
                /* after the last message sent to the customer */
                for (size_t i = n; i > 0; i--) {
                        const char *dir = str(json_array_get(messages, i - 1), "direction");
                        if (dir && strcmp(dir, "out") == 0) {
                                first = i;
                                break;
                        }
                }
                if (n - first > UNANSWERED_MAX) {
                        printf("(%zu earlier messages not shown: omniroutectl show)\n",
                               n - first - UNANSWERED_MAX);
                        first = n - UNANSWERED_MAX;
                }
                if (first == n) {
                        puts("no unanswered messages");
                        return;
                }
        }
        puts(unanswered_only ? "unanswered:" : "messages:");
        for (size_t i = first; i < n; i++)
                print_message(json_array_get(messages, i));
}
