/* router.h — routing decisions as a pure function of the message (and,
 * later, of the conversation): ordered rules, first match wins, else the
 * default queue. No I/O; unit-tested in tests/unit/router_test.c. */
#ifndef OMR_ROUTER_H
#define OMR_ROUTER_H

#include "omniroute/conf.h"
#include "omniroute/message.h"

struct omr_route_decision {
        const char *queue; /* borrowed from the routing conf */
        enum omr_priority priority;
        const struct omr_rule *rule; /* NULL: the default route */
};

/* `folded_text` is omr_text_fold(subject + " " + text), computed once by
 * the caller; NULL matches no keyword. */
void omr_route(const struct omr_conf_routing *routing, const struct omr_message *m,
               const char *folded_text, struct omr_route_decision *out);

#endif
