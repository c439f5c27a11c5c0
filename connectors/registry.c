/* registry.c — the one place that lists the connectors, in start order. */
#include "omniroute/connector.h"

extern const struct omr_connector_ops omr_api_connector;
extern const struct omr_connector_ops omr_twilio_connector;
extern const struct omr_connector_ops omr_vonage_connector;
extern const struct omr_connector_ops omr_email_connector;
extern const struct omr_connector_ops omr_chat_connector;
extern const struct omr_connector_ops omr_mastodon_connector;
extern const struct omr_connector_ops omr_x_connector;
extern const struct omr_connector_ops omr_meta_connector;

const struct omr_connector_ops *const omr_connectors[] = {
        &omr_api_connector,      /* signed JSON webhooks of channel adapters */
        &omr_twilio_connector,   /* SMS */
        &omr_vonage_connector,   /* SMS */
        &omr_email_connector,    /* IMAP, Mailgun in; SMTP out */
        &omr_chat_connector,     /* website chat websocket */
        &omr_mastodon_connector, /* notifications polled; statuses out */
        &omr_x_connector,        /* mentions polled; tweets out */
        &omr_meta_connector,     /* Messenger, Instagram webhooks; Graph API out */
        NULL,
};
