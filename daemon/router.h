/* router.h — routing decisions as a pure function of the message and what
 * is known about its customer: ordered rules, first match wins, else the
 * default queue. No I/O; unit-tested in tests/unit/router_test.c. The
 * decision carries the skills the rule requires of the agent. */
#ifndef OMR_ROUTER_H
#define OMR_ROUTER_H

#include <stdint.h>

#include "omniroute/conf.h"
#include "omniroute/message.h"

struct omr_route_decision {
        const char *queue; /* borrowed from the routing conf */
        enum omr_priority priority;
        const struct omr_rule *rule; /* NULL: the default route */
};

/* What rules look at besides the message. */
struct omr_route_input {
        const char *text;        /* subject + " " + text; NULL matches no regex */
        const char *folded_text; /* omr_text_fold(text); NULL matches no keyword */
        bool vip;                /* on routing.customers.vip */
        bool returning;          /* the customer has written before */
        int64_t now_ms;          /* for business-hours conditions */
};

void omr_route(const struct omr_conf_routing *routing, const struct omr_message *m,
               const struct omr_route_input *in, struct omr_route_decision *out);

#endif
