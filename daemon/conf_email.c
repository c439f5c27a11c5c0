/* conf_email.c — the connectors.email section: mailboxes with IMAP in,
 * SMTP out and an optional Mailgun inbound webhook. Same rules as conf.c:
 * typed, validated once, every error as file:line. */
#include <ctype.h>
#include <curl/curl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "conf_yaml.h"

#define MB_FIELD(fn, member, what)                                                                 \
        static int fn(struct cy *cy, yaml_node_t *v, void *obj)                                    \
        {                                                                                          \
                return cy_string(cy, v, what, &((struct omr_conf_email_mailbox *)obj)->member);    \
        }

MB_FIELD(mb_name, name, "email.mailboxes[].name")
MB_FIELD(mb_display, display_name, "display_name")
MB_FIELD(imap_user, imap.user, "imap.user")
MB_FIELD(smtp_user, smtp.user, "smtp.user")

static void free_secret(void *s, size_t len)
{
        if (s) {
                explicit_bzero(s, len);
                free(s);
        }
}

/* A plain address: one '@', a non-empty local part and a dotted-or-not
 * domain, nothing that could break a header line. Stored lower-case. */
static int mb_address(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        if (cy_string(cy, v, "address", &m->address))
                return -1;
        char *at = strchr(m->address, '@');
        bool ok = at && at != m->address && at[1] && strchr(at + 1, '@') == NULL &&
                  strchr(m->address, '+') == NULL;
        for (char *p = m->address; ok && *p; p++) {
                if (!isgraph((unsigned char)*p) || strchr("<>()[],;:\"\\", *p))
                        ok = false;
                *p = (char)tolower((unsigned char)*p);
        }
        if (!ok) {
                cy_error(cy, v,
                         "'address' must be a plain address local@domain without '+', got '%s'",
                         m->address);
                return -1;
        }
        return 0;
}

static int mb_token_secret(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        char *s = NULL;
        if (cy_secret(cy, v, "token_secret_file", &s, &m->token_secret_len))
                return -1;
        m->token_secret = (unsigned char *)s;
        if (m->token_secret_len < 16) {
                cy_error(cy, v, "the key in 'token_secret_file' is shorter than 16 bytes");
                return -1;
        }
        return 0;
}

static int mb_max_size(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        if (cy_size(cy, v, "max_message_size", &m->max_message_size))
                return -1;
        if (m->max_message_size < 4096 || m->max_message_size > (256u << 20)) {
                cy_error(cy, v, "'max_message_size' must be between 4KiB and 256MiB");
                return -1;
        }
        return 0;
}

/* --- imap ----------------------------------------------------------------- */

/* imap[s]://host[:port]/FOLDER, split into the server and the folder with
 * curl's own URL parser (the folder is percent-decoded for commands). */
static int imap_url(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        const char *s = cy_scalar(cy, v, "imap.url");
        if (s == NULL)
                return -1;
        CURLU *u = curl_url();
        char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *dpath = NULL, *user = NULL,
             *query = NULL;
        int rc = -1;
        if (u == NULL || curl_url_set(u, CURLUPART_URL, s, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_PATH, &path, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_PATH, &dpath, CURLU_URLDECODE) != CURLUE_OK) {
                cy_error(cy, v, "'imap.url' is not a URL: '%s'", s);
                goto out;
        }
        curl_url_get(u, CURLUPART_PORT, &port, 0);
        curl_url_get(u, CURLUPART_USER, &user, 0);
        curl_url_get(u, CURLUPART_QUERY, &query, 0);
        if (strcmp(scheme, "imap") != 0 && strcmp(scheme, "imaps") != 0) {
                cy_error(cy, v, "'imap.url' must start with imap:// or imaps://, got '%s'", s);
                goto out;
        }
        if (user || query || strchr(path, ';')) {
                cy_error(cy, v,
                         "'imap.url' takes no user, query or ;options (user and password_file "
                         "are keys of their own)");
                goto out;
        }
        const char *folder = path[0] == '/' ? path + 1 : path;
        const char *dfolder = dpath[0] == '/' ? dpath + 1 : dpath;
        if (*folder == '\0')
                folder = dfolder = "INBOX";
        if (strpbrk(dfolder, "\"\\\r\n") || strlen(dfolder) > 200) {
                cy_error(cy, v,
                         "the folder in 'imap.url' may not contain quotes, backslashes or "
                         "line breaks");
                goto out;
        }
        char *server = NULL;
        if (asprintf(&server, "%s://%s%s%s", scheme, host, port ? ":" : "", port ? port : "") < 0)
                goto out;
        free(m->imap.server);
        free(m->imap.folder_path);
        free(m->imap.folder);
        m->imap.server = server;
        m->imap.folder_path = strdup(folder);
        m->imap.folder = strdup(dfolder);
        rc = m->imap.folder_path && m->imap.folder ? 0 : -1;
out:
        curl_free(scheme);
        curl_free(host);
        curl_free(port);
        curl_free(path);
        curl_free(dpath);
        curl_free(user);
        curl_free(query);
        curl_url_cleanup(u);
        return rc;
}

static int imap_password(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        return cy_secret(cy, v, "imap.password_file", &m->imap.password, NULL);
}

static int imap_tls(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        const char *s = cy_scalar(cy, v, "imap.tls");
        static const char *const names[] = {"none", "try", "required"};
        for (int i = 0; s && i < 3; i++) {
                if (strcmp(s, names[i]) == 0) {
                        m->imap.tls = (enum omr_imap_tls)i;
                        return 0;
                }
        }
        if (s)
                cy_error(cy, v, "'imap.tls' is none, try or required");
        return -1;
}

static int imap_poll(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        return cy_duration_within(cy, v, "imap.poll_interval", "100ms", "1d", &m->imap.poll_ms);
}

static int imap_timeout(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        return cy_duration_within(cy, v, "imap.timeout", "1s", "10m", &m->imap.timeout_ms);
}

static int imap_batch(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        long long n;
        /* libcurl counts a command's response lines against a 300 KiB
         * limit, quadratically in their number: 100 stays far below. */
        if (cy_int(cy, v, "imap.batch", 1, 100, &n))
                return -1;
        m->imap.batch = (long)n;
        return 0;
}

static int imap_after(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        const char *s = cy_scalar(cy, v, "imap.after_store");
        if (s && strcmp(s, "seen") == 0)
                m->imap.after = OMR_IMAP_AFTER_SEEN;
        else if (s && strcmp(s, "move") == 0)
                m->imap.after = OMR_IMAP_AFTER_MOVE;
        else {
                if (s)
                        cy_error(cy, v, "'imap.after_store' is seen or move");
                return -1;
        }
        return 0;
}

static int imap_move_to(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        if (cy_string(cy, v, "imap.move_to", &m->imap.move_to))
                return -1;
        if (m->imap.move_to[0] == '\0' || strpbrk(m->imap.move_to, "\"\\\r\n")) {
                cy_error(cy, v,
                         "'imap.move_to' must be a folder name without quotes, "
                         "backslashes or line breaks");
                return -1;
        }
        return 0;
}

static int mb_imap(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"url", imap_url},
                {"user", imap_user},
                {"password_file", imap_password},
                {"tls", imap_tls},
                {"poll_interval", imap_poll},
                {"timeout", imap_timeout},
                {"batch", imap_batch},
                {"after_store", imap_after},
                {"move_to", imap_move_to},
                {NULL, NULL},
        };
        struct omr_conf_email_mailbox *m = obj;
        m->imap.tls = OMR_IMAP_TLS_REQUIRED;
        if (cy_mapping(cy, v, "email.mailboxes[].imap", keys, obj))
                return -1;
        if (m->imap.server == NULL || m->imap.user == NULL || m->imap.password == NULL) {
                cy_error(cy, v, "'imap' needs url, user and password_file");
                return -1;
        }
        if (m->imap.after == OMR_IMAP_AFTER_MOVE && m->imap.move_to == NULL) {
                cy_error(cy, v, "'imap.after_store: move' needs 'move_to'");
                return -1;
        }
        return 0;
}

/* --- smtp ----------------------------------------------------------------- */

static int smtp_server(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        if (cy_string(cy, v, "smtp.server", &m->smtp.server))
                return -1;
        if (strchr(m->smtp.server, ':') == NULL || strpbrk(m->smtp.server, "/ \t")) {
                cy_error(cy, v, "'smtp.server' must be host:port, got '%s'", m->smtp.server);
                return -1;
        }
        return 0;
}

static int smtp_password(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        return cy_secret(cy, v, "smtp.password_file", &m->smtp.password, NULL);
}

static int smtp_starttls(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        const char *s = cy_scalar(cy, v, "smtp.starttls");
        static const char *const names[] = {"disabled", "enabled", "required"};
        for (int i = 0; s && i < 3; i++) {
                if (strcmp(s, names[i]) == 0) {
                        m->smtp.starttls = (enum omr_starttls)i;
                        return 0;
                }
        }
        if (s)
                cy_error(cy, v, "'smtp.starttls' is disabled, enabled or required");
        return -1;
}

static int smtp_timeout(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        return cy_duration_within(cy, v, "smtp.timeout", "1s", "10m", &m->smtp.timeout_ms);
}

static int mb_smtp(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"server", smtp_server},          {"user", smtp_user},
                {"password_file", smtp_password}, {"starttls", smtp_starttls},
                {"timeout", smtp_timeout},        {NULL, NULL},
        };
        struct omr_conf_email_mailbox *m = obj;
        m->smtp.starttls = OMR_STARTTLS_REQUIRED;
        if (cy_mapping(cy, v, "email.mailboxes[].smtp", keys, obj))
                return -1;
        if (m->smtp.server == NULL) {
                cy_error(cy, v, "'smtp' needs 'server'");
                return -1;
        }
        if ((m->smtp.user == NULL) != (m->smtp.password == NULL)) {
                cy_error(cy, v, "'smtp' needs both 'user' and 'password_file', or neither");
                return -1;
        }
        return 0;
}

/* --- mailgun -------------------------------------------------------------- */

static int mg_key(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        char *s = NULL;
        if (cy_secret(cy, v, "mailgun.signing_key_file", &s, &m->mailgun_key_len))
                return -1;
        m->mailgun_key = (unsigned char *)s;
        return 0;
}

static int mg_window(struct cy *cy, yaml_node_t *v, void *obj)
{
        struct omr_conf_email_mailbox *m = obj;
        return cy_duration_within(cy, v, "mailgun.timestamp_window", "1s", "1d",
                                  &m->mailgun_window_ms);
}

static int mb_mailgun(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"signing_key_file", mg_key}, {"timestamp_window", mg_window}, {NULL, NULL}};
        struct omr_conf_email_mailbox *m = obj;
        if (cy_mapping(cy, v, "email.mailboxes[].mailgun", keys, obj))
                return -1;
        if (m->mailgun_key == NULL) {
                cy_error(cy, v, "'mailgun' needs 'signing_key_file'");
                return -1;
        }
        return 0;
}

/* --- mailboxes ------------------------------------------------------------ */

static bool mailbox_complete(const void *p)
{
        const struct omr_conf_email_mailbox *m = p;
        return m->name && m->address && m->token_secret;
}

static int email_mailboxes(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {
                {"name", mb_name},
                {"address", mb_address},
                {"display_name", mb_display},
                {"token_secret_file", mb_token_secret},
                {"max_message_size", mb_max_size},
                {"imap", mb_imap},
                {"smtp", mb_smtp},
                {"mailgun", mb_mailgun},
                {NULL, NULL},
        };
        static const struct seq_spec spec = {
                "connectors.email.mailboxes[]",
                keys,
                sizeof(struct omr_conf_email_mailbox),
                offsetof(struct omr_conf_email_mailbox, name),
                offsetof(struct omr_conf_email_mailbox, line),
                "a mailbox needs name, address and token_secret_file",
                mailbox_complete,
        };
        struct omr_conf *c = obj;
        int rc = cy_named_seq(cy, v, &spec, (void **)&c->email, &c->n_email);
        for (size_t i = 0; i < c->n_email; i++) {
                struct omr_conf_email_mailbox *m = &c->email[i];
                if (m->max_message_size == 0)
                        m->max_message_size = 25u << 20;
                if (m->imap.poll_ms == 0)
                        m->imap.poll_ms = 30000;
                if (m->imap.timeout_ms == 0)
                        m->imap.timeout_ms = 60000;
                if (m->imap.batch == 0)
                        m->imap.batch = 50;
                if (m->smtp.timeout_ms == 0)
                        m->smtp.timeout_ms = 60000;
                if (m->mailgun_window_ms == 0)
                        m->mailgun_window_ms = 15 * 60000;
        }
        if (rc == 0) {
                for (size_t i = 0; i < c->n_email; i++)
                        for (size_t k = 0; k < i; k++)
                                if (strcmp(c->email[i].address, c->email[k].address) == 0) {
                                        cy_error(cy, v, "mailboxes '%s' and '%s' share address %s",
                                                 c->email[k].name, c->email[i].name,
                                                 c->email[i].address);
                                        rc = -1;
                                }
        }
        return rc;
}

int omr_conf_sec_email(struct cy *cy, yaml_node_t *v, void *obj)
{
        static const struct cy_key keys[] = {{"mailboxes", email_mailboxes}, {NULL, NULL}};
        return cy_mapping(cy, v, "connectors.email", keys, obj);
}

void omr_conf_free_email(struct omr_conf *c)
{
        for (size_t i = 0; i < c->n_email; i++) {
                struct omr_conf_email_mailbox *m = &c->email[i];
                free(m->name);
                free(m->address);
                free(m->display_name);
                free_secret(m->token_secret, m->token_secret_len);
                free(m->imap.server);
                free(m->imap.folder_path);
                free(m->imap.folder);
                free(m->imap.user);
                free_secret(m->imap.password, m->imap.password ? strlen(m->imap.password) : 0);
                free(m->imap.move_to);
                free(m->smtp.server);
                free(m->smtp.user);
                free_secret(m->smtp.password, m->smtp.password ? strlen(m->smtp.password) : 0);
                free_secret(m->mailgun_key, m->mailgun_key_len);
        }
        free(c->email);
        c->email = NULL;
        c->n_email = 0;
}

const struct omr_conf_email_mailbox *omr_conf_email(const struct omr_conf *c, const char *name)
{
        for (size_t i = 0; name && i < c->n_email; i++)
                if (strcmp(c->email[i].name, name) == 0)
                        return &c->email[i];
        return NULL;
}
