/* ctl_http.c — omniroutectl's HTTP client: one libcurl easy handle (so the
 * connection is reused between calls), blocking calls with JSON bodies,
 * the bearer token on every request. Owns the token copy and wipes it.
 * The CLI's only thread; blocking is what a command-line tool wants. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

#ifndef OMR_VERSION
#define OMR_VERSION "dev"
#endif

#define CONNECT_TIMEOUT_MS 5000L
#define TOTAL_TIMEOUT_MS   30000L
#define BODY_MAX           (8u << 20) /* the daemon's answers are far smaller */

_Static_assert(sizeof(((struct ctl_response *)0)->error) >= CURL_ERROR_SIZE,
               "ctl_response.error must hold a curl error buffer");

struct ctl_http {
        CURL *curl;
        char *base_url;
        char *auth_header; /* "Authorization: Bearer <token>": wiped at free */
        const volatile sig_atomic_t *abort_flag;
};

/* The answer being received. */
struct sink {
        char *buf;
        size_t len, cap;
        bool too_big;
};

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
        struct sink *s = arg;
        size_t n = size * nmemb;
        if (n > BODY_MAX - s->len) {
                s->too_big = true;
                return 0; /* curl fails the transfer: CURLE_WRITE_ERROR */
        }
        if (s->len + n + 1 > s->cap) {
                size_t cap = s->cap ? s->cap : 4096;
                while (cap < s->len + n + 1)
                        cap *= 2;
                char *p = realloc(s->buf, cap);
                if (p == NULL)
                        return 0;
                s->buf = p;
                s->cap = cap;
        }
        memcpy(s->buf + s->len, data, n);
        s->len += n;
        s->buf[s->len] = '\0';
        return n;
}

static int on_progress(void *arg, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                       curl_off_t ulnow)
{
        const struct ctl_http *h = arg;
        (void)dltotal;
        (void)dlnow;
        (void)ultotal;
        (void)ulnow;
        return h->abort_flag && *h->abort_flag ? 1 : 0;
}

struct ctl_http *ctl_http_new(const char *base_url, const char *token)
{
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                return NULL;
        struct ctl_http *h = calloc(1, sizeof(*h));
        if (h == NULL) {
                curl_global_cleanup();
                return NULL;
        }
        h->curl = curl_easy_init();
        h->base_url = strdup(base_url);
        if (asprintf(&h->auth_header, "Authorization: Bearer %s", token) < 0)
                h->auth_header = NULL;
        if (h->curl == NULL || h->base_url == NULL || h->auth_header == NULL) {
                ctl_http_free(h);
                return NULL;
        }
        return h;
}

void ctl_http_free(struct ctl_http *h)
{
        if (h == NULL)
                return;
        if (h->curl)
                curl_easy_cleanup(h->curl);
        if (h->auth_header) {
                explicit_bzero(h->auth_header, strlen(h->auth_header));
                free(h->auth_header);
        }
        free(h->base_url);
        free(h);
        curl_global_cleanup();
}

void ctl_http_set_abort(struct ctl_http *h, const volatile sig_atomic_t *flag)
{
        h->abort_flag = flag;
}

void ctl_response_clear(struct ctl_response *res)
{
        free(res->body);
        json_decref(res->json);
        memset(res, 0, sizeof(*res));
}

/* The request's headers. curl copies each string into the list, so the
 * token's copy there is wiped before the list is freed. */
static void headers_free(struct curl_slist *list)
{
        for (struct curl_slist *l = list; l; l = l->next)
                explicit_bzero(l->data, strlen(l->data));
        curl_slist_free_all(list);
}

static struct curl_slist *headers_new(const struct ctl_http *h, bool has_body)
{
        const char *const lines[] = {
                h->auth_header,
                "Accept: application/json",
                /* no "Expect: 100-continue" round trip before a larger body */
                "Expect:",
                has_body ? "Content-Type: application/json" : NULL,
        };
        struct curl_slist *list = NULL;
        for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
                if (lines[i] == NULL)
                        continue;
                struct curl_slist *l = curl_slist_append(list, lines[i]);
                if (l == NULL) {
                        headers_free(list);
                        return NULL;
                }
                list = l;
        }
        return list;
}

int ctl_http_call(struct ctl_http *h, const char *method, const char *path, const json_t *body,
                  struct ctl_response *res)
{
        memset(res, 0, sizeof(*res));
        char *url = NULL, *payload = NULL;
        struct curl_slist *headers = NULL;
        struct sink sink = {0};
        CURL *c = h->curl;
        int rc = -1;

        if (body && (payload = json_dumps(body, JSON_COMPACT)) == NULL) {
                snprintf(res->error, sizeof(res->error), "cannot encode the request body");
                goto out;
        }
        if (asprintf(&url, "%s%s", h->base_url, path) < 0) {
                url = NULL;
                snprintf(res->error, sizeof(res->error), "out of memory");
                goto out;
        }
        if ((headers = headers_new(h, payload != NULL)) == NULL) {
                snprintf(res->error, sizeof(res->error), "out of memory");
                goto out;
        }

        /* A clean slate for every call; the connection cache survives. */
        curl_easy_reset(c);
        curl_easy_setopt(c, CURLOPT_URL, url);
        /* Ids go into the path as they are: no "." / ".." squashing. */
        curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
#if LIBCURL_VERSION_NUM >= 0x075500 /* 7.85.0 */
        curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
#endif
        curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(c, CURLOPT_USERAGENT, "omniroutectl/" OMR_VERSION);
        curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
        curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, TOTAL_TIMEOUT_MS);
        /* omniroutectl has its own signal handlers (login --stay). */
        curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, res->error);
        curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
        if (h->abort_flag) {
                curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
                curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
                curl_easy_setopt(c, CURLOPT_XFERINFODATA, h);
        }
        if (payload || strcmp(method, "POST") == 0) {
                curl_easy_setopt(c, CURLOPT_POSTFIELDS, payload ? payload : "");
                curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE,
                                 (curl_off_t)(payload ? strlen(payload) : 0));
        }
        if (strcmp(method, "GET") == 0)
                curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
        else if (strcmp(method, "POST") != 0)
                curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);

        CURLcode cc = curl_easy_perform(c);
        /* The error buffer lives in *res, which the caller may move. */
        curl_easy_setopt(c, CURLOPT_ERRORBUFFER, NULL);
        if (cc != CURLE_OK) {
                if (sink.too_big)
                        snprintf(res->error, sizeof(res->error), "the answer is over %u bytes",
                                 BODY_MAX);
                else if ((res->interrupted = cc == CURLE_ABORTED_BY_CALLBACK))
                        snprintf(res->error, sizeof(res->error), "interrupted");
                else if (res->error[0] == '\0')
                        snprintf(res->error, sizeof(res->error), "%s", curl_easy_strerror(cc));
                goto out;
        }
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &res->status);
        res->body = sink.buf ? sink.buf : strdup("");
        res->len = sink.len;
        sink.buf = NULL;
        if (res->body == NULL) {
                res->status = 0;
                snprintf(res->error, sizeof(res->error), "out of memory");
                goto out;
        }
        if (res->len > 0)
                res->json = json_loadb(res->body, res->len, 0, NULL);
        rc = 0;
out:
        free(sink.buf);
        headers_free(headers);
        free(url);
        free(payload);
        return rc;
}

/* RFC 3986 unreserved characters and '@' stand as they are in a segment. */
static bool segment_char(unsigned char ch)
{
        return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
               strchr("-._~@", ch) != NULL;
}

char *ctl_path(const char *prefix, const char *id, const char *suffix)
{
        static const char hex[] = "0123456789ABCDEF";
        size_t pl = strlen(prefix), il = strlen(id), sl = strlen(suffix);
        char *out = malloc(pl + 3 * il + sl + 1);
        if (out == NULL)
                return NULL;
        char *p = out;
        memcpy(p, prefix, pl);
        p += pl;
        for (const unsigned char *s = (const unsigned char *)id; *s; s++) {
                if (segment_char(*s)) {
                        *p++ = (char)*s;
                } else {
                        *p++ = '%';
                        *p++ = hex[*s >> 4];
                        *p++ = hex[*s & 15];
                }
        }
        memcpy(p, suffix, sl + 1);
        return out;
}
