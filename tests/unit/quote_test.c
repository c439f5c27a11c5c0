/* quote_test.c — unit tests for connectors/email/quote.c: the new text of
 * a reply with quoted history and signature cut, in the forms mail clients
 * write them (Gmail, Outlook, Apple Mail, Thunderbird; several languages),
 * and the texts that must survive whole. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "email/quote.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const struct {
        const char *name, *in, *want;
} cases[] = {
        {"empty", "", ""},
        {"blank", "  \n\n \t \r\n", ""},
        {"plain", "Hello", "Hello"},
        {"crlf normalised, ends trimmed", "\r\n\r\n  Hi\r\n\r\nThanks\r\n\r\n", "Hi\n\nThanks"},
        {"lone cr", "a\rb", "a\nb"},
        /* attributions */
        {"gmail",
         "Sure, done.\n\nOn Mon, Jul 1, 2025 at 10:00 AM Support <s@example.com> wrote:\n"
         "> old\n> text\n",
         "Sure, done."},
        {"gmail wrapped over two lines",
         "Yes.\n\nOn Mon, Jul 1, 2025 at 10:00 AM A Very Long Display Name <\n"
         "support@example.com> wrote:\n\n> old\n",
         "Yes."},
        {"gmail html converted: history without >",
         "Thanks!\n\nOn Mon, Jul 1, 2025 at 10:00 AM Support <s@example.com> wrote:\n\n"
         "old message text\nmore of it",
         "Thanks!"},
        {"thunderbird", "Fine\n\nOn 01/07/2025 10:00, Support wrote:\n> old", "Fine"},
        {"french",
         "Merci\n\nLe lun. 1 juil. 2025 \xc3\xa0 10:00, Support <s@example.com> a "
         "\xc3\xa9"
         "crit :\n> vieux\n",
         "Merci"},
        {"french nbsp before colon",
         "Merci\n\nLe 1 juil. 2025, Support a \xc3\xa9"
         "crit\xc2\xa0:\n> vieux",
         "Merci"},
        {"german",
         "Danke\n\nAm Mo., 1. Juli 2025 um 10:00 Uhr schrieb Support <s@example.com>:\n> alt",
         "Danke"},
        {"spanish",
         "Gracias\n\nEl lun, 1 jul 2025 a las 10:00, Support (<s@example.com>) escribi\xc3\xb3:\n"
         "> viejo",
         "Gracias"},
        {"vietnamese gmail",
         "C\xe1\xba\xa3m \xc6\xa1n\n\nV\xc3\xa0o Th 2, 1 thg 7, 2025 v\xc3\xa0o l\xc3\xba"
         "c 10:00 Support <s@example.com> \xc4\x91\xc3\xa3 vi\xe1\xba\xbft:\n> c\xc5\xa9",
         "C\xe1\xba\xa3m \xc6\xa1n"},
        {"turkish gmail",
         "Te\xc5\x9f"
         "ekk\xc3\xbcrler\n\nSupport <s@example.com>, 1 Tem 2025 Pzt, 10:00 "
         "tarihinde \xc5\x9funu yazd\xc4\xb1:\n> eski",
         "Te\xc5\x9f"
         "ekk\xc3\xbcrler"},
        {"thai gmail",
         "\xe0\xb8\x82\xe0\xb8\xad\xe0\xb8\x9a\xe0\xb8\x84\xe0\xb8\xb8\xe0\xb8\x93\n\n"
         "\xe0\xb9\x80\xe0\xb8\xa1\xe0\xb8\xb7\xe0\xb9\x88\xe0\xb8\xad 1 "
         "\xe0\xb8\x81.\xe0\xb8\x84. "
         "2025 Support <s@example.com> \xe0\xb9\x80\xe0\xb8\x82\xe0\xb8\xb5\xe0\xb8\xa2\xe0\xb8\x99"
         "\xe0\xb8\xa7\xe0\xb9\x88\xe0\xb8\xb2:\n> old",
         "\xe0\xb8\x82\xe0\xb8\xad\xe0\xb8\x9a\xe0\xb8\x84\xe0\xb8\xb8\xe0\xb8\x93"},
        {"name wrote: above a trailing quote", "Thanks\n\nJohn Smith wrote:\n> hi", "Thanks"},
        {"crlf attribution", "Ok\r\n\r\nOn Mon, X <x@example.com> wrote:\r\n> a\r\n", "Ok"},
        /* Outlook */
        {"original message",
         "Ok\n\n-----Original Message-----\nFrom: Support\nSent: Monday\nTo: me\nSubject: x\n\nold",
         "Ok"},
        {"original message, spaced", "Ok\n----- Original Message -----\nFrom: a\n\nold", "Ok"},
        {"outlook underscores",
         "Ok\n\n________________________________\nFrom: Support <s@example.com>\n"
         "Sent: Monday, July 1, 2025 10:00 AM\nTo: me\nSubject: Re: x\n\nold",
         "Ok"},
        {"underscores without From stay", "Line\n______________________________\nMore",
         "Line\n______________________________\nMore"},
        {"outlook header block",
         "Thanks\n\nFrom: Support <s@example.com>\nSent: Monday\nTo: me\nSubject: Re: x\n\nold",
         "Thanks"},
        {"german outlook header block",
         "Danke\n\nVon: Support <s@example.com>\nGesendet: Montag\nAn: mich\n\nalt", "Danke"},
        {"header block on the first line stays", "From: my colleague\nSent: yesterday\nhello",
         "From: my colleague\nSent: yesterday\nhello"},
        {"forwarded message stays",
         "FYI\n\n---------- Forwarded message ---------\nFrom: Bank <b@example.com>\n"
         "Date: Mon, 1 Jul 2025\nSubject: Statement\nTo: me\n\nYour statement",
         "FYI\n\n---------- Forwarded message ---------\nFrom: Bank <b@example.com>\n"
         "Date: Mon, 1 Jul 2025\nSubject: Statement\nTo: me\n\nYour statement"},
        /* '>' blocks */
        {"trailing quote block", "Answer\n\n> q1\n> q2\n\n", "Answer"},
        {"interleaved quotes stay",
         "On Mon, Bob <b@example.com> wrote:\n> q1\nanswer1\n> q2\nanswer2\n",
         "On Mon, Bob <b@example.com> wrote:\n> q1\nanswer1\n> q2\nanswer2"},
        {"interleaved, then a trailing block", "> q1\nanswer1\n\n> rest\n>\n> of quote\n",
         "> q1\nanswer1"},
        {"bottom post stays", "> question\nmy answer", "> question\nmy answer"},
        {"all quoted: returned whole", "> all quoted\n> text\n", "> all quoted\n> text"},
        {"indented quote marks", "Reply\n  > quoted\n", "Reply"},
        /* signatures */
        {"rfc 3676 signature", "Hello\n\n-- \nJohn Doe\nACME", "Hello"},
        {"signature without space", "Hello\n--\nJohn", "Hello"},
        {"signature crlf", "Hello\r\n-- \r\nJohn\r\n", "Hello"},
        {"dashes with text stay", "a\n-- b\nc", "a\n-- b\nc"},
        {"only a signature: returned whole", "-- \nJohn", "-- \nJohn"},
        {"signature then quote", "Hi\n-- \nJ\n\nOn Mon, X <x@example.com> wrote:\n> y", "Hi"},
        {"sent from my iphone", "Yes please\n\nSent from my iPhone", "Yes please"},
        {"iphone line above the quote",
         "Yes\n\nSent from my iPhone\n\nOn Jul 1, 2025, at 10:00, Support <s@example.com> "
         "wrote:\n\n> old",
         "Yes"},
        {"outlook mobile", "Ok\n\nGet Outlook for Android", "Ok"},
        {"device line in the middle stays", "Sent from my iPhone is what it says\nbut more text",
         "Sent from my iPhone is what it says\nbut more text"},
        {"thai device line",
         "\xe0\xb8\x82\xe0\xb8\xad\xe0\xb8\x9a\xe0\xb8\x84\xe0\xb8\xb8\xe0\xb8\x93\n\n"
         "\xe0\xb8\xaa\xe0\xb9\x88\xe0\xb8\x87\xe0\xb8\x88\xe0\xb8\xb2\xe0\xb8\x81 iPhone "
         "\xe0\xb8\x82\xe0\xb8\xad\xe0\xb8\x87\xe0\xb8\x89\xe0\xb8\xb1\xe0\xb8\x99",
         "\xe0\xb8\x82\xe0\xb8\xad\xe0\xb8\x9a\xe0\xb8\x84\xe0\xb8\xb8\xe0\xb8\x93"},
        {"japanese device line", "OK\n\niPhone\xe3\x81\x8b\xe3\x82\x89\xe9\x80\x81\xe4\xbf\xa1",
         "OK"},
        {"device line alone: returned whole", "Sent from my iPhone", "Sent from my iPhone"},
        /* prose that looks a little like the rules */
        {"on ... without wrote", "On Monday we shipped it.\nThanks",
         "On Monday we shipped it.\nThanks"},
        {"sentence ending in wrote: without @ or >", "Here is what I wrote:\nthe plan",
         "Here is what I wrote:\nthe plan"},
};

static void test_trim(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(cases); i++) {
                char *got = omr_email_trim_quoted(cases[i].in);
                if (got == NULL)
                        fail_msg("%s: NULL", cases[i].name);
                if (strcmp(got, cases[i].want) != 0)
                        fail_msg("%s: got \"%s\", want \"%s\"", cases[i].name, got, cases[i].want);
                free(got);
        }
}

static void test_null(void **state)
{
        (void)state;
        char *got = omr_email_trim_quoted(NULL);
        assert_non_null(got);
        assert_string_equal(got, "");
        free(got);
}

/* Long and odd inputs: no crash, never "" for text with content. */
static void test_robust(void **state)
{
        (void)state;
        size_t n = 200000;
        char *big = malloc(n + 1);
        assert_non_null(big);
        for (size_t i = 0; i < n; i++)
                big[i] = i % 3 == 0 ? '\n' : (i % 7 == 0 ? '>' : 'x');
        big[n] = '\0';
        char *got = omr_email_trim_quoted(big);
        assert_non_null(got);
        assert_true(got[0] != '\0');
        free(got);
        memset(big, '>', n);
        got = omr_email_trim_quoted(big);
        assert_non_null(got);
        assert_int_equal(strlen(got), n);
        free(got);
        free(big);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_trim),
                cmocka_unit_test(test_null),
                cmocka_unit_test(test_robust),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
