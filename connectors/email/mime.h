/* mime.h — one RFC 5322 message read into what the email connector needs
 * (GMime 3): threading ids, addresses, decoded subject, the text body in
 * UTF-8 (legacy charsets decoded), attachments listed, loop signals.
 * omr_email_parse never fails on malformed input. Any thread once
 * omr_email_mime_init() has run. */
#ifndef OMNIROUTE_EMAIL_MIME_H
#define OMNIROUTE_EMAIL_MIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct omr_email_limits {
        size_t max_text;        /* bytes of text/body_full/html kept (longer: cut at a UTF-8
                                   boundary, warning); 0: 1 MiB */
        size_t max_attachments; /* listed attachments (more: warning); 0: 100 */
};

struct omr_email_attachment {
        char *name;    /* decoded filename (RFC 2231/2047), UTF-8, directories stripped;
                          "attachment-N" (N: 1-based position in the list) when none */
        char *type;    /* "image/png" lower-case */
        int64_t size;  /* decoded size in bytes */
        char *section; /* IMAP part number of the part, e.g. "2" or "1.2" (for BODY[section]
                          references) */
};

struct omr_email {
        char *message_id;  /* without <>, NULL when absent/unparseable */
        char *in_reply_to; /* first msg-id of In-Reply-To without <>, or NULL */
        char **references; /* References msg-ids without <>, oldest first; at most 64:
                              the first (the thread's root) and the 63 newest */
        size_t n_references;
        char *from_addr;     /* lower-cased address of the first From mailbox, NULL if none */
        char *from_name;     /* decoded display name, NULL if none */
        char *reply_to_addr; /* lower-cased first Reply-To address or NULL */
        char **recipients;   /* lower-cased addresses from To, Cc, Delivered-To, X-Original-To,
                                in that order, no duplicates; at most 256 */
        size_t n_recipients;
        char *subject;   /* decoded (RFC 2047, any charset) UTF-8, NULL if absent */
        int64_t date_ms; /* Date header in ms since the epoch, 0 when absent/invalid */
        char *text;      /* what an agent reads: body_full with quoted history and
                            signature trimmed (quote.h); never NULL ("" ok) */
        char *body_full; /* full text body in UTF-8, \n line ends: the text/plain part
                            preferred (first one outside attachments;
                            multipart/alternative -> plain), else text/html converted
                            with omr_html_to_text; never NULL */
        char *html;      /* the text/html body in UTF-8 when there is one, else NULL */
        struct omr_email_attachment *attachments;
        size_t n_attachments;
        bool auto_submitted;     /* machine-sent: never auto-answer (see mime.c) */
        const char *auto_reason; /* static string naming why, e.g. "Auto-Submitted:
                                    auto-replied", NULL */
        char warnings[256];      /* "" when clean; else short human text ("; "-separated) */
};

/* Parses one RFC 5322 message. Never fails on malformed input: returns a
 * struct with whatever could be read and warnings set. NULL only on
 * allocation failure. All strings valid UTF-8 (invalid sequences replaced
 * with U+FFFD), free of NUL; header-derived strings are one line (control
 * characters replaced by spaces). lim may be NULL (defaults). Thread-safe
 * for concurrent calls. */
struct omr_email *omr_email_parse(const char *raw, size_t len, const struct omr_email_limits *lim);
void omr_email_free(struct omr_email *e);
/* Process-wide g_mime_init()/g_mime_shutdown() (and libxml2's
 * xmlInitParser); idempotent, reference counted, thread-safe. Call init
 * before the first parse (a parse without it initialises GMime for good)
 * and shutdown only when no parse is running. */
void omr_email_mime_init(void);
void omr_email_mime_shutdown(void);

#endif
