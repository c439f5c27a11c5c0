/* registry.c — the one place that lists the connectors, in start order. */
#include "omniroute/connector.h"

extern const struct omr_connector_ops omr_api_connector;
extern const struct omr_connector_ops omr_twilio_connector;
extern const struct omr_connector_ops omr_vonage_connector;
extern const struct omr_connector_ops omr_email_connector;
extern const struct omr_connector_ops omr_chat_connector;

const struct omr_connector_ops *const omr_connectors[] = {
        &omr_api_connector,
        &omr_twilio_connector,
        &omr_vonage_connector,
        &omr_email_connector,
        &omr_chat_connector,
        NULL,
};
