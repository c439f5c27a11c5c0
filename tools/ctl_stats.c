/* ctl_stats.c — `omniroutectl stats`: the KPIs of GET /v1/stats, as a short
 * human summary (queues, agents' load, response times, SLA attainment) or,
 * with --json, the daemon's document. */
#include <jansson.h>
#include <stdio.h>

#include "ctl.h"

static void print_times(const char *what, json_t *list)
{
        size_t i;
        json_t *h;
        json_array_foreach(list, i, h)
        {
                printf("  %-15s %-8s %-16s n=%-6lld avg=%llds\n", what,
                       json_string_value(json_object_get(h, "channel")),
                       json_string_value(json_object_get(h, "queue")),
                       (long long)json_integer_value(json_object_get(h, "count")),
                       (long long)json_integer_value(json_object_get(h, "avg_ms")) / 1000);
        }
}

int ctl_cmd_stats(struct ctl *c, int argc, char **argv)
{
        int rc = ctl_args(argv[0], argc, argv, 0, "");
        struct ctl_response res;
        if (rc != CTL_OK || (rc = ctl_call(c, "GET", "/v1/stats", NULL, &res)) != CTL_OK)
                return rc;
        if (c->json) {
                ctl_print_json(res.json);
                ctl_response_clear(&res);
                return CTL_OK;
        }
        const char *q;
        json_t *v;
        printf("queues (waiting, oldest):\n");
        json_object_foreach(json_object_get(res.json, "queues"), q, v)
        {
                printf("  %-20s %-4s %6lld  %llds\n", q,
                       json_string_value(json_object_get(v, "mode")),
                       (long long)json_integer_value(json_object_get(v, "waiting")),
                       (long long)json_integer_value(json_object_get(v, "oldest_waiting_ms")) /
                               1000);
        }
        printf("agents (presence, open conversations):\n");
        size_t i;
        json_array_foreach(json_object_get(res.json, "agents"), i, v)
        {
                printf("  %-20s %-8s %lld\n", json_string_value(json_object_get(v, "id")),
                       json_string_value(json_object_get(v, "presence")),
                       (long long)json_integer_value(json_object_get(v, "load_total")));
        }
        json_t *rt = json_object_get(res.json, "response_times");
        printf("response times:\n");
        print_times("first response", json_object_get(rt, "first_response"));
        print_times("next response", json_object_get(rt, "next_response"));
        print_times("resolution", json_object_get(rt, "resolution"));
        printf("SLA attainment:\n");
        json_array_foreach(json_object_get(res.json, "sla"), i, v)
        {
                json_t *att = json_object_get(v, "attainment");
                printf("  %-4s %-8s %-16s hit=%lld missed=%lld",
                       json_string_value(json_object_get(v, "clock")),
                       json_string_value(json_object_get(v, "channel")),
                       json_string_value(json_object_get(v, "queue")),
                       (long long)json_integer_value(json_object_get(v, "hit")),
                       (long long)json_integer_value(json_object_get(v, "missed")));
                if (json_is_number(att))
                        printf(" %.1f%%", 100.0 * json_number_value(att));
                printf("\n");
        }
        ctl_response_clear(&res);
        return CTL_OK;
}
