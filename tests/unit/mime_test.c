/* mime_test.c — unit tests for connectors/email/mime.c: bodies in every
 * legacy charset the issue names (and none, and an unknown one) with each
 * transfer encoding, RFC 2047 headers, HTML-only and alternative mail,
 * attachments and their IMAP sections, broken MIME, loop signals,
 * threading ids, limits. Messages are written inline; encoded bytes were
 * produced by Python's codecs and are spelled in hex. Texts are compared
 * after NFC normalisation (windows-1258 writes tone marks as combining
 * characters: what iconv hands back composed or not is equally right). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <glib.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "email/mime.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

#define HDR                                                                                        \
        "From: Customer <c@example.com>\r\n"                                                       \
        "To: support@example.com\r\n"                                                              \
        "Subject: test\r\n"                                                                        \
        "Message-ID: <m1@example.com>\r\n"                                                         \
        "MIME-Version: 1.0\r\n"

#define THAI_UTF8                                                                                  \
        "\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1\xe0\xb8\xaa\xe0\xb8\x94\xe0\xb8\xb5\xe0\xb8\x84\xe0" \
        "\xb8\xa3\xe0\xb8\xb1\xe0\xb8\x9a"           /* สวัสดีครับ */
#define VIET_UTF8 "Ti\xe1\xba\xbfng Vi\xe1\xbb\x87t" /* Tiếng Việt */
#define TURK_UTF8                                                                                  \
        "T\xc3\xbcrk\xc3\xa7"                                                                      \
        "e \xc4\x9f\xc3\xbc\xc5\x9f\xc4\xb1\xc3\xb6\xc3\xa7" /* Türkçe ğüşıöç */
#define JA_UTF8 "\xe3\x81\x93\xe3\x82\x93\xe3\x81\xab\xe3\x81\xa1\xe3\x81\xaf" /* こんにちは */
#define ZH_UTF8 "\xe4\xbd\xa0\xe5\xa5\xbd\xef\xbc\x8c\xe4\xb8\x96\xe7\x95\x8c" /* 你好，世界 */
#define FFFD    "\xef\xbf\xbd"

static struct omr_email *parse(const char *raw, const struct omr_email_limits *lim)
{
        struct omr_email *e = omr_email_parse(raw, strlen(raw), lim);
        assert_non_null(e);
        return e;
}

/* Equal after NFC (both must be valid UTF-8). */
static bool same_text(const char *got, const char *want)
{
        if (got == NULL || want == NULL)
                return got == want;
        gchar *a = g_utf8_normalize(got, -1, G_NORMALIZE_NFC);
        gchar *b = g_utf8_normalize(want, -1, G_NORMALIZE_NFC);
        bool same = a && b && strcmp(a, b) == 0;
        g_free(a);
        g_free(b);
        return same;
}

static void check_utf8(const char *what, const char *s)
{
        if (s != NULL && !g_utf8_validate(s, -1, NULL))
                fail_msg("%s: invalid UTF-8", what);
}

/* Every string of e valid UTF-8, text and body_full never NULL. */
static void check_invariants(const struct omr_email *e)
{
        assert_non_null(e->text);
        assert_non_null(e->body_full);
        check_utf8("text", e->text);
        check_utf8("body_full", e->body_full);
        check_utf8("html", e->html);
        check_utf8("subject", e->subject);
        check_utf8("from_name", e->from_name);
        check_utf8("warnings", e->warnings);
        for (size_t i = 0; i < e->n_attachments; i++) {
                check_utf8("attachment name", e->attachments[i].name);
                assert_non_null(e->attachments[i].type);
                assert_non_null(e->attachments[i].section);
        }
}

/* --- bodies in every charset -------------------------------------------- */

static const struct {
        const char *name;
        const char *charset; /* NULL: no charset parameter */
        const char *cte;
        const char *body;
        const char *want;
        const char *warning; /* substring of warnings, "" for none */
} charset_cases[] = {
        {"utf-8 8bit", "utf-8", "8bit", THAI_UTF8, THAI_UTF8, ""},
        {"utf-8 base64", "UTF-8", "base64", "4Liq4Lin4Lix4Liq4LiU4Li14LiE4Lij4Lix4Lia", THAI_UTF8,
         ""},
        {"utf-8 quoted-printable", "utf-8", "quoted-printable",
         "=E0=B8=AA=E0=B8=A7=E0=B8=B1=E0=B8=AA=E0=B8=94=E0=B8=B5=E0=B8=84=E0=B8=A3=E0=\r\n"
         "=B8=B1=E0=B8=9A",
         THAI_UTF8, ""},
        {"tis-620 qp", "TIS-620", "quoted-printable", "=CA=C7=D1=CA=B4=D5=A4=C3=D1=BA", THAI_UTF8,
         ""},
        {"tis-620 8bit", "tis-620", "8bit", "\xca\xc7\xd1\xca\xb4\xd5\xa4\xc3\xd1\xba", THAI_UTF8,
         ""},
        {"windows-874 base64 with smart quotes", "windows-874", "base64", "ysfRyrTVpMPRuiCTb2uU",
         THAI_UTF8 " \xe2\x80\x9cok\xe2\x80\x9d", ""},
        {"windows-1258 qp", "windows-1258", "quoted-printable", "Ti=EA=ECng Vi=EA=F2t", VIET_UTF8,
         ""},
        {"windows-1258 base64", "windows-1258", "base64", "VGnq7G5nIFZp6vJ0", VIET_UTF8, ""},
        {"iso-8859-9 8bit", "iso-8859-9", "8bit",
         "T\xfcrk\xe7"
         "e \xf0\xfc\xfe\xfd\xf6\xe7",
         TURK_UTF8, ""},
        {"iso-8859-9 base64", "ISO-8859-9", "base64", "VPxya+dlIPD8/v325w==", TURK_UTF8, ""},
        {"iso-2022-jp 7bit", "iso-2022-jp", "7bit", "\x1b$B$3$s$K$A$O\x1b(B", JA_UTF8, ""},
        {"iso-2022-jp base64", "ISO-2022-JP", "base64", "GyRCJDMkcyRLJEEkTxsoQg==", JA_UTF8, ""},
        {"gb18030 base64", "gb18030", "base64", "xOO6w6OsysC95w==", ZH_UTF8, ""},
        {"gb2312 label, gb18030 bytes", "gb2312", "quoted-printable",
         "=C4=E3=BA=C3=A3=AC=CA=C0=BD=E7", ZH_UTF8, ""},
        {"iso-8859-1 qp", "iso-8859-1", "quoted-printable", "Caf=E9 d=E9j=E0 vu",
         "Caf\xc3\xa9 d\xc3\xa9j\xc3\xa0 vu", ""},
        {"quoted charset name", "\"utf-8\"", "8bit", THAI_UTF8, THAI_UTF8, ""},
        {"no charset, ascii", NULL, "7bit", "plain ascii", "plain ascii", ""},
        {"no charset, utf-8 bytes", NULL, "8bit", THAI_UTF8, THAI_UTF8, ""},
        {"no charset, windows-1252 bytes", NULL, "8bit", "caf\xe9 \x93q\x94",
         "caf\xc3\xa9 \xe2\x80\x9cq\xe2\x80\x9d", ""},
        {"us-ascii declared, 8-bit sent", "us-ascii", "8bit", "na\xefve", "na\xc3\xafve", ""},
        {"unknown charset", "x-no-such-charset", "8bit", "ok " THAI_UTF8 " \xff\xfe end",
         "ok " THAI_UTF8 " " FFFD FFFD " end", "unknown charset x-no-such-charset"},
        {"charset name with iconv suffix", "utf-8//TRANSLIT", "8bit", "abc", "abc",
         "unknown charset"},
        {"invalid utf-8", "utf-8", "8bit", "bad \xc3\x28 and \xed\xa0\x80 end",
         "bad " FFFD "( and " FFFD FFFD FFFD " end", "invalid UTF-8 replaced"},
        {"undecodable byte", "windows-874", "8bit", "\xca\xdb", "\xe0\xb8\xaa" FFFD,
         "undecodable windows-874 bytes replaced"},
        {"cut iso-2022-jp character", "iso-2022-jp", "7bit", "ok\x1b$B$", "ok" FFFD,
         "undecodable iso-2022-jp bytes replaced"},
        {"crlf and lone cr", "utf-8", "8bit", "one\r\ntwo\rthree", "one\ntwo\nthree", ""},
        {"garbage base64", "utf-8", "base64", "aGVsbG8=!!!***", "hello", ""},
};

static void test_charsets(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(charset_cases); i++) {
                char *raw =
                        g_strdup_printf(HDR "Content-Type: text/plain%s%s\r\n"
                                            "Content-Transfer-Encoding: %s\r\n\r\n%s",
                                        charset_cases[i].charset ? "; charset=" : "",
                                        charset_cases[i].charset ? charset_cases[i].charset : "",
                                        charset_cases[i].cte, charset_cases[i].body);
                struct omr_email *e = parse(raw, NULL);
                check_invariants(e);
                if (!same_text(e->body_full, charset_cases[i].want))
                        fail_msg("%s: body \"%s\", want \"%s\"", charset_cases[i].name,
                                 e->body_full, charset_cases[i].want);
                if (strncmp(e->text, e->body_full, strlen(e->text)) != 0 || e->text[0] == '\0')
                        fail_msg("%s: text \"%s\"", charset_cases[i].name, e->text);
                const char *w = charset_cases[i].warning;
                if ((*w == '\0' && e->warnings[0] != '\0') ||
                    (*w != '\0' && strstr(e->warnings, w) == NULL))
                        fail_msg("%s: warnings \"%s\", want \"%s\"", charset_cases[i].name,
                                 e->warnings, w);
                assert_null(e->html);
                omr_email_free(e);
                g_free(raw);
        }
}

static void test_nul_bytes(void **state)
{
        (void)state;
        static const char raw[] = HDR "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                                      "a\0b\0c";
        struct omr_email *e = omr_email_parse(raw, sizeof(raw) - 1, NULL);
        assert_non_null(e);
        check_invariants(e);
        assert_string_equal(e->body_full, "a" FFFD "b" FFFD "c");
        assert_non_null(strstr(e->warnings, "NUL bytes replaced"));
        omr_email_free(e);

        /* NUL inside the header block: cut there, nothing read past it. */
        static const char hdr_nul[] = "Subject: a\0b\r\nFrom: x@y.z\r\n\r\nbody";
        e = omr_email_parse(hdr_nul, sizeof(hdr_nul) - 1, NULL);
        assert_non_null(e);
        check_invariants(e);
        omr_email_free(e);
}

/* --- RFC 2047 headers ---------------------------------------------------- */

static const struct {
        const char *name, *subject, *want;
} subject_cases[] = {
        {"plain", "Hello there", "Hello there"},
        {"utf-8 B", "=?utf-8?B?4Liq4Lin4Lix4Liq4LiU4Li14LiE4Lij4Lix4Lia?=", THAI_UTF8},
        {"utf-8 Q",
         "=?UTF-8?Q?=E0=B8=AA=E0=B8=A7=E0=B8=B1=E0=B8=AA=E0=B8=94=E0=B8=B5=E0=B8=84=E0=B8=A3=E0="
         "B8=B1=E0=B8=9A?=",
         THAI_UTF8},
        {"tis-620 B", "=?tis-620?B?ysfRyrTVpMPRug==?=", THAI_UTF8},
        {"windows-874 Q", "=?windows-874?Q?=CA=C7=D1=CA=B4=D5=A4=C3=D1=BA?=", THAI_UTF8},
        {"windows-1258 Q", "=?windows-1258?Q?Ti=EA=ECng_Vi=EA=F2t?=", VIET_UTF8},
        {"windows-1258 B", "=?windows-1258?B?VGnq7G5nIFZp6vJ0?=", VIET_UTF8},
        {"iso-8859-9 Q", "=?iso-8859-9?Q?T=FCrk=E7e_=F0=FC=FE=FD=F6=E7?=", TURK_UTF8},
        {"iso-2022-jp B", "=?ISO-2022-JP?B?GyRCJDMkcyRLJEEkTxsoQg==?=", JA_UTF8},
        {"gb18030 B", "=?gb18030?B?xOO6w6OsysC95w==?=", ZH_UTF8},
        {"iso-8859-1 Q", "=?iso-8859-1?Q?Caf=E9?=", "Caf\xc3\xa9"},
        {"adjacent words join", "=?utf-8?Q?a?= =?utf-8?Q?b?=", "ab"},
        /* Python's email package: B words with padding, folded; GMime 3.2
         * alone stops after the first. */
        {"B words with padding, folded",
         "=?utf-8?B?4Liq4Lin4Lix4Liq4LiU4Li14LiE4Lij4Lix4LiaIOC4lQ==?=\r\n"
         " =?utf-8?B?4LmJ4Lit4LiH4LiB4Liy4Lij4LiE4Lin4Liy4Lih4LiK4LmI?=\r\n"
         " =?utf-8?B?4Lin4Lii4LmA4Lir4Lil4Li34Lit?=",
         THAI_UTF8 " \xe0\xb8\x95\xe0\xb9\x89\xe0\xb8\xad\xe0\xb8\x87\xe0\xb8\x81\xe0\xb8\xb2"
                   "\xe0\xb8\xa3\xe0\xb8\x84\xe0\xb8\xa7\xe0\xb8\xb2\xe0\xb8\xa1\xe0\xb8\x8a"
                   "\xe0\xb9\x88\xe0\xb8\xa7\xe0\xb8\xa2\xe0\xb9\x80\xe0\xb8\xab\xe0\xb8\xa5"
                   "\xe0\xb8\xb7\xe0\xb8\xad"},
        {"B words, a character split between them",
         "=?utf-8?B?4Lg=?= =?utf-8?B?qg==?=", "\xe0\xb8\xaa"},
        {"B then Q word", "=?utf-8?B?YQ==?= =?utf-8?Q?b?=", "ab"},
        {"B words in two charsets", "=?tis-620?B?yg==?= =?utf-8?B?YQ==?=",
         "\xe0\xb8\xaa"
         "a"},
        {"not a word", "price =?5 and =?x?B? broken", "price =?5 and =?x?B? broken"},
        {"mixed text and word", "Re: =?utf-8?B?4Liq4Lin4Lix4Liq4LiU4Li14LiE4Lij4Lix4Lia?= #42",
         "Re: " THAI_UTF8 " #42"},
        {"folded", "first\r\n second", "first second"},
        {"encoded line break is one line", "=?utf-8?Q?a=0D=0Ab?=", "a  b"},
        {"empty", "", ""},
};

static void test_subjects(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(subject_cases); i++) {
                char *raw = g_strdup_printf("From: a@b.c\r\nSubject: %s\r\n\r\nbody\r\n",
                                            subject_cases[i].subject);
                struct omr_email *e = parse(raw, NULL);
                check_invariants(e);
                if (!same_text(e->subject, subject_cases[i].want))
                        fail_msg("%s: subject \"%s\", want \"%s\"", subject_cases[i].name,
                                 e->subject ? e->subject : "(null)", subject_cases[i].want);
                omr_email_free(e);
                g_free(raw);
        }
        struct omr_email *e = parse("From: a@b.c\r\n\r\nbody", NULL);
        assert_null(e->subject);
        omr_email_free(e);
}

/* Raw 8-bit header bytes (no RFC 2047): UTF-8 as is, a legacy charset
 * read with the body's charset. */
static void test_raw_8bit_headers(void **state)
{
        (void)state;
        struct omr_email *e = parse("From: \xca\xc7\xd1\xca\xb4\xd5 <t@example.th>\r\n"
                                    "Subject: \xca\xc7\xd1\xca\xb4\xd5\xa4\xc3\xd1\xba\r\n"
                                    "Content-Type: text/plain; charset=tis-620\r\n\r\n"
                                    "\xca\xc7\xd1\xca\xb4\xd5\xa4\xc3\xd1\xba",
                                    NULL);
        check_invariants(e);
        assert_string_equal(e->subject, THAI_UTF8);
        assert_string_equal(e->from_name,
                            "\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1\xe0\xb8\xaa\xe0\xb8\x94"
                            "\xe0\xb8\xb5");
        assert_string_equal(e->body_full, THAI_UTF8);
        omr_email_free(e);

        e = parse("From: a@example.com\r\nSubject: " THAI_UTF8 "\r\n"
                  "Content-Type: text/plain; charset=tis-620\r\n\r\nx",
                  NULL);
        assert_string_equal(e->subject, THAI_UTF8);
        omr_email_free(e);
}

static const struct {
        const char *name, *from, *want_addr, *want_name;
} from_cases[] = {
        {"bare", "Alice@Example.COM", "alice@example.com", NULL},
        {"angle", "<bob@example.com>", "bob@example.com", NULL},
        {"quoted name", "\"Doe, John\" <John.Doe@Example.com>", "john.doe@example.com",
         "Doe, John"},
        {"utf-8 B name", "=?utf-8?B?4Liq4Lin4Lix4Liq4LiU4Li14LiE4Lij4Lix4Lia?= <t@example.th>",
         "t@example.th", THAI_UTF8},
        {"tis-620 name", "=?tis-620?Q?=CA=C7=D1=CA=B4=D5=A4=C3=D1=BA?= <t@example.th>",
         "t@example.th", THAI_UTF8},
        {"windows-1258 name", "=?windows-1258?Q?Ti=EA=ECng_Vi=EA=F2t?= <v@example.vn>",
         "v@example.vn", VIET_UTF8},
        {"iso-8859-9 name", "=?iso-8859-9?Q?T=FCrk=E7e_=F0=FC=FE=FD=F6=E7?= <t@example.tr>",
         "t@example.tr", TURK_UTF8},
        {"iso-2022-jp name", "=?iso-2022-jp?B?GyRCJDMkcyRLJEEkTxsoQg==?= <j@example.jp>",
         "j@example.jp", JA_UTF8},
        {"gb18030 name", "=?gb18030?B?xOO6w6OsysC95w==?= <z@example.cn>", "z@example.cn", ZH_UTF8},
        {"B words with padding in a name",
         "=?utf-8?B?4Liq4Lin4Lix4Liq?= =?utf-8?B?4LiU4Li1?= <t@example.th>", "t@example.th",
         "\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1\xe0\xb8\xaa\xe0\xb8\x94\xe0\xb8\xb5"},
        {"B words padded, name", "=?utf-8?B?YQ==?= =?utf-8?B?Yg==?= <ab@example.com>",
         "ab@example.com", "ab"},
        {"group", "Team: x@example.com, y@example.com;", "x@example.com", NULL},
        {"two mailboxes", "a@example.com, b@example.com", "a@example.com", NULL},
        {"garbage", ";;;", NULL, NULL},
};

static void test_from(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(from_cases); i++) {
                char *raw = g_strdup_printf("From: %s\r\nSubject: s\r\n\r\nbody\r\n",
                                            from_cases[i].from);
                struct omr_email *e = parse(raw, NULL);
                check_invariants(e);
                const char *wa = from_cases[i].want_addr, *wn = from_cases[i].want_name;
                if ((wa == NULL) != (e->from_addr == NULL) || (wa && strcmp(wa, e->from_addr) != 0))
                        fail_msg("%s: from_addr \"%s\"", from_cases[i].name,
                                 e->from_addr ? e->from_addr : "(null)");
                if ((wn == NULL) != (e->from_name == NULL) || (wn && !same_text(e->from_name, wn)))
                        fail_msg("%s: from_name \"%s\"", from_cases[i].name,
                                 e->from_name ? e->from_name : "(null)");
                omr_email_free(e);
                g_free(raw);
        }
}

static void test_addresses(void **state)
{
        (void)state;
        struct omr_email *e = parse("From: A <a@example.com>\r\n"
                                    "Reply-To: Replies <Replies@Example.com>, other@example.com\r\n"
                                    "To: Support <Support@Example.com>, b@example.com\r\n"
                                    "Cc: Team: c@example.com, support@example.com;\r\n"
                                    "Delivered-To: support+abc@example.com\r\n"
                                    "X-Original-To: alias@example.com\r\n"
                                    "Delivered-To: relay@example.com\r\n"
                                    "\r\nbody",
                                    NULL);
        check_invariants(e);
        assert_string_equal(e->reply_to_addr, "replies@example.com");
        static const char *const want[] = {"support@example.com", "b@example.com",
                                           "c@example.com",       "support+abc@example.com",
                                           "relay@example.com",   "alias@example.com"};
        assert_int_equal(e->n_recipients, N(want));
        for (size_t i = 0; i < N(want); i++)
                assert_string_equal(e->recipients[i], want[i]);
        omr_email_free(e);

        e = parse("From: a@example.com\r\n\r\nbody", NULL);
        assert_null(e->reply_to_addr);
        assert_int_equal(e->n_recipients, 0);
        omr_email_free(e);
}

/* --- threading ids and date ----------------------------------------------- */

static void test_ids(void **state)
{
        (void)state;
        struct omr_email *e = parse("From: a@example.com\r\n"
                                    "Message-ID: <abc.123@mail.example.com>\r\n"
                                    "In-Reply-To: <first@x.example> <second@x.example>\r\n"
                                    "References: <r1@x.example>\r\n"
                                    " <r2@x.example>\r\n"
                                    "\t(comment) <r3@x.example>\r\n"
                                    "Date: Tue, 01 Jul 2025 10:00:00 +0700\r\n"
                                    "\r\nbody",
                                    NULL);
        check_invariants(e);
        assert_string_equal(e->message_id, "abc.123@mail.example.com");
        assert_string_equal(e->in_reply_to, "first@x.example");
        assert_int_equal(e->n_references, 3);
        assert_string_equal(e->references[0], "r1@x.example");
        assert_string_equal(e->references[1], "r2@x.example");
        assert_string_equal(e->references[2], "r3@x.example");
        assert_int_equal(e->date_ms, INT64_C(1751338800000));
        omr_email_free(e);

        /* "Your message of ..." style In-Reply-To; no Message-ID; bad date. */
        e = parse("From: a@example.com\r\n"
                  "In-Reply-To: Your message of Monday <old@x.example>\r\n"
                  "Date: the day after tomorrow\r\n"
                  "\r\nbody",
                  NULL);
        assert_null(e->message_id);
        assert_string_equal(e->in_reply_to, "old@x.example");
        assert_int_equal(e->n_references, 0);
        assert_int_equal(e->date_ms, 0);
        omr_email_free(e);

        /* A long References list keeps the root and the newest. */
        GString *raw = g_string_new("From: a@example.com\r\nReferences:");
        for (int i = 0; i < 100; i++)
                g_string_append_printf(raw, "\r\n <r%d@x.example>", i);
        g_string_append(raw, "\r\n\r\nbody");
        e = parse(raw->str, NULL);
        assert_int_equal(e->n_references, 64);
        assert_string_equal(e->references[0], "r0@x.example");
        assert_string_equal(e->references[1], "r37@x.example");
        assert_string_equal(e->references[63], "r99@x.example");
        omr_email_free(e);
        g_string_free(raw, TRUE);
}

/* --- structure ------------------------------------------------------------ */

static void test_html_only(void **state)
{
        (void)state;
        struct omr_email *e =
                parse(HDR "Content-Type: text/html; charset=utf-8\r\n\r\n"
                          "<html><head><title>T</title><style>p{}</style></head><body>"
                          "<p>Hello <b>world</b> &amp; " THAI_UTF8 "</p><p>Second</p>"
                          "<ul><li>one</li><li>two</li></ul></body></html>",
                      NULL);
        check_invariants(e);
        assert_string_equal(e->body_full, "Hello world & " THAI_UTF8 "\n\nSecond\n\n- one\n- two");
        assert_string_equal(e->text, e->body_full);
        assert_non_null(e->html);
        assert_non_null(strstr(e->html, "<p>Hello <b>world</b>"));
        assert_string_equal(e->warnings, "");
        omr_email_free(e);

        /* No charset parameter: the <meta> names it. */
        e = parse(HDR "Content-Type: text/html\r\n\r\n"
                      "<html><head><meta http-equiv=\"Content-Type\" "
                      "content=\"text/html; charset=windows-874\"></head>"
                      "<body>\xca\xc7\xd1\xca\xb4\xd5\xa4\xc3\xd1\xba</body></html>",
                  NULL);
        check_invariants(e);
        assert_string_equal(e->body_full, THAI_UTF8);
        assert_non_null(strstr(e->html, THAI_UTF8));
        omr_email_free(e);
}

#define ALT_BODY                                                                                   \
        "--alt\r\n"                                                                                \
        "Content-Type: text/plain; charset=tis-620\r\n"                                            \
        "Content-Transfer-Encoding: quoted-printable\r\n\r\n"                                      \
        "=CA=C7=D1=CA=B4=D5=A4=C3=D1=BA\r\n"                                                       \
        "--alt\r\n"                                                                                \
        "Content-Type: text/html; charset=tis-620\r\n"                                             \
        "Content-Transfer-Encoding: base64\r\n\r\n"                                                \
        "PGI+ysfRyrTVpMPRujwvYj4=\r\n" /* <b>สวัสดีครับ</b> */                 \
        "--alt--\r\n"

static void test_alternative(void **state)
{
        (void)state;
        struct omr_email *e = parse(HDR "Content-Type: multipart/alternative; boundary=alt\r\n\r\n"
                                        "preamble\r\n" ALT_BODY "epilogue\r\n",
                                    NULL);
        check_invariants(e);
        assert_string_equal(e->body_full, THAI_UTF8);
        assert_string_equal(e->html, "<b>" THAI_UTF8 "</b>");
        assert_int_equal(e->n_attachments, 0);
        assert_string_equal(e->warnings, "");
        omr_email_free(e);

        /* html first, and a blank text/plain placeholder: the HTML is read. */
        e = parse(HDR "Content-Type: multipart/alternative; boundary=alt\r\n\r\n"
                      "--alt\r\nContent-Type: text/html\r\n\r\n<p>from html</p>\r\n"
                      "--alt\r\nContent-Type: text/plain\r\n\r\n \r\n"
                      "--alt--\r\n",
                  NULL);
        check_invariants(e);
        assert_string_equal(e->body_full, "from html");
        omr_email_free(e);
}

static void test_attachments(void **state)
{
        (void)state;
        struct omr_email *e = parse(
                HDR
                "Content-Type: multipart/mixed; boundary=\"mix\"\r\n\r\n"
                "--mix\r\n"
                "Content-Type: multipart/alternative; boundary=alt\r\n\r\n" ALT_BODY "--mix\r\n"
                "Content-Type: image/png; name=\"logo.png\"\r\n"
                "Content-Disposition: attachment; filename=\"logo.png\"\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n"
                "iVBORw0KGgo=\r\n" /* 8 bytes */
                "--mix\r\n"
                "Content-Type: application/pdf\r\n"
                "Content-Disposition: attachment;\r\n"
                " filename*=UTF-8''%E0%B8%AA%E0%B8%A7%E0%B8%B1%E0%B8%AA.pdf\r\n\r\n"
                "%PDF-1.4\r\n"
                "--mix\r\n"
                "Content-Type: text/plain; charset=utf-8;\r\n"
                " name=\"=?utf-8?B?4LiE4Lij4Lix4Lia?=.txt\"\r\n\r\n"
                "notes\r\n"
                "--mix\r\n"
                "Content-Type: application/octet-stream\r\n"
                "Content-Disposition: attachment; filename=\"C:\\\\Users\\\\x\\\\Report.XLS\"\r\n"
                "\r\n"
                "0123456789\r\n"
                "--mix\r\n"
                "Content-Type: message/rfc822\r\n\r\n"
                "From: inner@example.com\r\n"
                "Subject: inner\r\n\r\n"
                "inner body\r\n"
                "--mix\r\n"
                "Content-Type: IMAGE/JPEG\r\n"
                "Content-Transfer-Encoding: base64\r\n\r\n"
                "/9j/4AAQ\r\n"
                "--mix--\r\n",
                NULL);
        check_invariants(e);
        assert_string_equal(e->body_full, THAI_UTF8);
        assert_string_equal(e->html, "<b>" THAI_UTF8 "</b>");
        static const struct {
                const char *name, *type, *section;
                int64_t size;
        } want[] = {
                {"logo.png", "image/png", "2", 8},
                {"\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1\xe0\xb8\xaa.pdf", "application/pdf", "3", 8},
                {"\xe0\xb8\x84\xe0\xb8\xa3\xe0\xb8\xb1\xe0\xb8\x9a.txt", "text/plain", "4", 5},
                {"Report.XLS", "application/octet-stream", "5", 10},
                {"attachment-5", "message/rfc822", "6", 0},
                {"attachment-6", "image/jpeg", "7", 6},
        };
        assert_int_equal(e->n_attachments, N(want));
        for (size_t i = 0; i < N(want); i++) {
                const struct omr_email_attachment *a = &e->attachments[i];
                if (strcmp(a->name, want[i].name) || strcmp(a->type, want[i].type) ||
                    strcmp(a->section, want[i].section) ||
                    (want[i].size && a->size != want[i].size))
                        fail_msg("attachment %zu: %s %s %s %lld", i, a->name, a->type, a->section,
                                 (long long)a->size);
        }
        assert_true(e->attachments[4].size > 40); /* the inner message, serialised */
        assert_string_equal(e->warnings, "");
        omr_email_free(e);
}

static void test_nested_sections(void **state)
{
        (void)state;
        /* mixed[ related[ alternative[plain, html], inline image ], pdf ] */
        struct omr_email *e =
                parse(HDR "Content-Type: multipart/mixed; boundary=a\r\n\r\n"
                          "--a\r\nContent-Type: multipart/related; boundary=b\r\n\r\n"
                          "--b\r\nContent-Type: multipart/alternative; boundary=c\r\n\r\n"
                          "--c\r\nContent-Type: text/plain\r\n\r\nnested plain\r\n"
                          "--c\r\nContent-Type: text/html\r\n\r\n<p>nested html</p>\r\n"
                          "--c--\r\n"
                          "--b\r\nContent-Type: image/gif\r\nContent-ID: <img1>\r\n"
                          "Content-Disposition: inline\r\n\r\nGIF89a\r\n"
                          "--b--\r\n"
                          "--a\r\nContent-Type: application/pdf; name=x.pdf\r\n\r\n%PDF\r\n"
                          "--a--\r\n",
                      NULL);
        check_invariants(e);
        assert_string_equal(e->body_full, "nested plain");
        assert_string_equal(e->html, "<p>nested html</p>");
        assert_int_equal(e->n_attachments, 2);
        assert_string_equal(e->attachments[0].section, "1.2");
        assert_string_equal(e->attachments[0].type, "image/gif");
        assert_string_equal(e->attachments[0].name, "attachment-1");
        assert_string_equal(e->attachments[1].section, "2");
        assert_string_equal(e->attachments[1].name, "x.pdf");
        omr_email_free(e);

        /* A single-part message that is an attachment: section 1. */
        e = parse(HDR "Content-Type: application/pdf\r\n"
                      "Content-Disposition: attachment; filename=a.pdf\r\n\r\n%PDF-1.4\r\n",
                  NULL);
        check_invariants(e);
        assert_string_equal(e->body_full, "");
        assert_string_equal(e->text, "");
        assert_int_equal(e->n_attachments, 1);
        assert_string_equal(e->attachments[0].section, "1");
        omr_email_free(e);
}

static void test_broken(void **state)
{
        (void)state;
        /* Multipart without boundary: GMime finds no parts; the raw body
         * is what can be read. */
        struct omr_email *e = parse(HDR "Content-Type: multipart/mixed\r\n\r\n"
                                        "--foo\r\nContent-Type: text/plain\r\n\r\nhello\r\n"
                                        "--foo--\r\n",
                                    NULL);
        check_invariants(e);
        assert_non_null(strstr(e->warnings, "broken MIME"));
        assert_non_null(strstr(e->body_full, "hello"));
        omr_email_free(e);

        /* Truncated in the middle of the second part. */
        e = parse(HDR "Content-Type: multipart/mixed; boundary=foo\r\n\r\n"
                      "--foo\r\nContent-Type: text/plain\r\n\r\nfirst part\r\n"
                      "--foo\r\nContent-Type: application/pdf\r\n"
                      "Content-Transfer-Encoding: base64\r\n\r\nJVBERi0",
                  NULL);
        check_invariants(e);
        assert_non_null(strstr(e->warnings, "truncated"));
        assert_string_equal(e->body_full, "first part");
        assert_int_equal(e->n_attachments, 1);
        omr_email_free(e);

        /* A Content-Type that does not parse is text/plain (RFC 2045). */
        e = parse(HDR "Content-Type: garbage\r\n\r\nstill readable\r\n", NULL);
        check_invariants(e);
        assert_string_equal(e->body_full, "still readable");
        assert_int_equal(e->n_attachments, 0);
        omr_email_free(e);

        /* Empty parts. */
        e = parse(HDR "Content-Type: multipart/alternative; boundary=alt\r\n\r\n"
                      "--alt\r\nContent-Type: text/plain\r\n\r\n"
                      "--alt\r\nContent-Type: text/html\r\n\r\n"
                      "--alt--\r\n",
                  NULL);
        check_invariants(e);
        assert_string_equal(e->body_full, "");
        assert_string_equal(e->html, "");
        omr_email_free(e);

        /* Header-only message: clean, empty body. */
        e = parse("From: a@example.com\r\nSubject: only headers\r\n", NULL);
        check_invariants(e);
        assert_string_equal(e->subject, "only headers");
        assert_string_equal(e->body_full, "");
        assert_string_equal(e->text, "");
        assert_string_equal(e->warnings, "");
        omr_email_free(e);

        /* Not a message at all. */
        e = parse("hello, this is not mail\n\xff\n", NULL);
        check_invariants(e);
        assert_string_equal(e->warnings, "not a MIME message");
        assert_string_equal(e->body_full, "hello, this is not mail\n\xc3\xbf");
        assert_null(e->subject);
        assert_null(e->from_addr);
        omr_email_free(e);

        e = omr_email_parse("", 0, NULL);
        assert_non_null(e);
        assert_string_equal(e->body_full, "");
        assert_string_equal(e->text, "");
        assert_string_equal(e->warnings, "not a MIME message");
        omr_email_free(e);
        e = omr_email_parse(NULL, 0, NULL);
        assert_non_null(e);
        omr_email_free(e);

        /* Nested far deeper than anything real. */
        GString *deep = g_string_new(HDR "Content-Type: multipart/mixed; boundary=b0\r\n\r\n");
        for (int i = 1; i < 200; i++)
                g_string_append_printf(
                        deep, "--b%d\r\nContent-Type: multipart/mixed; boundary=b%d\r\n\r\n", i - 1,
                        i);
        g_string_append(deep, "--b199\r\nContent-Type: text/plain\r\n\r\ndeep\r\n");
        e = parse(deep->str, NULL);
        check_invariants(e);
        assert_non_null(strstr(e->warnings, "nesting too deep"));
        omr_email_free(e);
        g_string_free(deep, TRUE);
}

/* --- loop protection -------------------------------------------------------- */

static const struct {
        const char *name, *headers, *reason; /* reason NULL: not auto-submitted */
} auto_cases[] = {
        {"normal", "From: c@example.com\r\n", NULL},
        {"auto-replied", "From: c@example.com\r\nAuto-Submitted: auto-replied\r\n",
         "Auto-Submitted: auto-replied"},
        {"auto-generated, params", "From: c@example.com\r\nAuto-Submitted: Auto-Generated; x=y\r\n",
         "Auto-Submitted: auto-generated"},
        {"auto-notified", "From: c@example.com\r\nAuto-Submitted: auto-notified\r\n",
         "Auto-Submitted: auto-notified"},
        {"other value", "From: c@example.com\r\nAuto-Submitted: yes-please\r\n", "Auto-Submitted"},
        {"no", "From: c@example.com\r\nAuto-Submitted: no\r\n", NULL},
        {"No with comment", "From: c@example.com\r\nAuto-Submitted: No (human)\r\n", NULL},
        {"precedence bulk", "From: c@example.com\r\nPrecedence: bulk\r\n", "Precedence: bulk"},
        {"precedence list", "From: c@example.com\r\nPrecedence: LIST\r\n", "Precedence: list"},
        {"precedence junk", "From: c@example.com\r\nPrecedence: junk\r\n", "Precedence: junk"},
        {"precedence other", "From: c@example.com\r\nPrecedence: first-class\r\n", NULL},
        {"null return path", "From: c@example.com\r\nReturn-Path: <>\r\n", "Return-Path: <>"},
        {"null return path, spaced", "From: c@example.com\r\nReturn-Path: < >\r\n",
         "Return-Path: <>"},
        {"return path", "From: c@example.com\r\nReturn-Path: <bounce@example.com>\r\n", NULL},
        {"x-autoreply yes", "From: c@example.com\r\nX-Autoreply: yes\r\n", "X-Autoreply: yes"},
        {"x-autoreply no", "From: c@example.com\r\nX-Autoreply: no\r\n", NULL},
        {"x-autorespond", "From: c@example.com\r\nX-Autorespond: anything\r\n", "X-Autorespond"},
        {"x-auto-response-suppress is a request",
         "From: c@example.com\r\nX-Auto-Response-Suppress: All\r\n", NULL},
        {"list-id", "From: c@example.com\r\nList-Id: <news.example.com>\r\n", "List-Id"},
        {"list-unsubscribe", "From: c@example.com\r\nList-Unsubscribe: <mailto:u@example.com>\r\n",
         "List-Unsubscribe"},
        {"mailer-daemon", "From: Mail Delivery System <MAILER-DAEMON@mx.example.com>\r\n",
         "From: mailer-daemon"},
        {"postmaster", "From: postmaster@example.com\r\n", "From: postmaster"},
        {"postmaster lookalike", "From: postmaster2@example.com\r\n", NULL},
        {"first reason wins", "From: postmaster@example.com\r\nPrecedence: bulk\r\n",
         "Precedence: bulk"},
};

static void test_auto_submitted(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(auto_cases); i++) {
                char *raw = g_strdup_printf("%sSubject: s\r\n\r\nbody\r\n", auto_cases[i].headers);
                struct omr_email *e = parse(raw, NULL);
                const char *want = auto_cases[i].reason;
                if (e->auto_submitted != (want != NULL) ||
                    (want && (e->auto_reason == NULL || strcmp(e->auto_reason, want) != 0)) ||
                    (!want && e->auto_reason != NULL))
                        fail_msg("%s: auto %d reason \"%s\"", auto_cases[i].name, e->auto_submitted,
                                 e->auto_reason ? e->auto_reason : "(null)");
                omr_email_free(e);
                g_free(raw);
        }
}

/* --- text given to agents, limits ------------------------------------------ */

static void test_quoted_reply(void **state)
{
        (void)state;
        struct omr_email *e =
                parse(HDR "Content-Type: text/plain; charset=utf-8\r\n\r\n"
                          "Thanks, that worked.\r\n\r\n"
                          "On Mon, 1 Jul 2025 at 10:00, Support <support@example.com> "
                          "wrote:\r\n"
                          "> Try restarting it.\r\n",
                      NULL);
        assert_string_equal(e->text, "Thanks, that worked.");
        assert_non_null(strstr(e->body_full, "> Try restarting it."));
        omr_email_free(e);
}

static void test_limits(void **state)
{
        (void)state;
        const struct omr_email_limits lim = {.max_text = 8, .max_attachments = 1};
        /* "สวัสดีครับ" is 30 bytes; 8 keeps two characters (6 bytes). */
        struct omr_email *e =
                parse(HDR "Content-Type: text/plain; charset=utf-8\r\n\r\n" THAI_UTF8, &lim);
        check_invariants(e);
        assert_string_equal(e->body_full, "\xe0\xb8\xaa\xe0\xb8\xa7");
        assert_non_null(strstr(e->warnings, "text truncated"));
        omr_email_free(e);

        e = parse(HDR "Content-Type: text/html; charset=tis-620\r\n\r\n"
                      "<p>\xca\xc7\xd1\xca\xb4\xd5\xa4\xc3\xd1\xba</p>",
                  &lim);
        check_invariants(e);
        assert_true(strlen(e->html) <= 8);
        assert_string_equal(e->body_full, "\xe0\xb8\xaa\xe0\xb8\xa7");
        assert_non_null(strstr(e->warnings, "html truncated"));
        assert_non_null(strstr(e->warnings, "text truncated"));
        omr_email_free(e);

        e = parse(HDR "Content-Type: multipart/mixed; boundary=m\r\n\r\n"
                      "--m\r\nContent-Type: text/plain\r\n\r\nhi\r\n"
                      "--m\r\nContent-Type: image/png\r\n\r\nx\r\n"
                      "--m\r\nContent-Type: image/png\r\n\r\ny\r\n"
                      "--m\r\nContent-Type: image/png\r\n\r\nz\r\n"
                      "--m--\r\n",
                  &lim);
        check_invariants(e);
        assert_int_equal(e->n_attachments, 1);
        assert_non_null(strstr(e->warnings, "2 attachments not listed"));
        omr_email_free(e);

        /* Raw fallback is bounded too. */
        e = parse("not mail at all, long enough to cut", &lim);
        assert_string_equal(e->body_full, "not mail");
        omr_email_free(e);
}

/* --- threads ----------------------------------------------------------------- */

static void *parse_many(void *arg)
{
        (void)arg;
        for (int i = 0; i < 50; i++) {
                for (size_t k = 0; k < N(charset_cases); k += 3) {
                        char *raw = g_strdup_printf(
                                HDR "Content-Type: text/plain; charset=%s\r\n"
                                    "Content-Transfer-Encoding: %s\r\n\r\n%s",
                                charset_cases[k].charset ? charset_cases[k].charset : "",
                                charset_cases[k].cte, charset_cases[k].body);
                        struct omr_email *e = omr_email_parse(raw, strlen(raw), NULL);
                        if (e == NULL || !g_utf8_validate(e->body_full, -1, NULL))
                                abort();
                        omr_email_free(e);
                        g_free(raw);
                }
        }
        return NULL;
}

static void test_threads(void **state)
{
        (void)state;
        pthread_t t[4];
        for (size_t i = 0; i < N(t); i++)
                assert_int_equal(pthread_create(&t[i], NULL, parse_many, NULL), 0);
        for (size_t i = 0; i < N(t); i++)
                pthread_join(t[i], NULL);
}

static int setup(void **state)
{
        (void)state;
        omr_email_mime_init();
        omr_email_mime_init(); /* reference counted */
        omr_email_mime_shutdown();
        return 0;
}

static int teardown(void **state)
{
        (void)state;
        omr_email_mime_shutdown();
        return 0;
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_charsets),
                cmocka_unit_test(test_nul_bytes),
                cmocka_unit_test(test_subjects),
                cmocka_unit_test(test_raw_8bit_headers),
                cmocka_unit_test(test_from),
                cmocka_unit_test(test_addresses),
                cmocka_unit_test(test_ids),
                cmocka_unit_test(test_html_only),
                cmocka_unit_test(test_alternative),
                cmocka_unit_test(test_attachments),
                cmocka_unit_test(test_nested_sections),
                cmocka_unit_test(test_broken),
                cmocka_unit_test(test_auto_submitted),
                cmocka_unit_test(test_quoted_reply),
                cmocka_unit_test(test_limits),
                cmocka_unit_test(test_threads),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
