/* html_test.c — unit tests for daemon/html_text.c: HTML as mail clients
 * write it (Gmail's divs, Outlook's MsoNormal paragraphs, lists, tables,
 * links), broken HTML, entities, invalid bytes, very deep nesting. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "omniroute/html.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))
#define FFFD "\xef\xbf\xbd"

static const struct {
        const char *name, *in, *want;
} cases[] = {
        {"empty", "", ""},
        {"text only", "plain text", "plain text"},
        {"whitespace collapsed", "  a \n\t b   c  ", "a b c"},
        {"paragraphs", "<p>a</p><p>b</p>", "a\n\nb"},
        {"br", "a<br>b<br><br>c", "a\nb\n\nc"},
        {"many br: one blank line, none at the ends", "<br><br><br>a<br><br><br><br>b<br><br>",
         "a\n\nb"},
        {"divs", "<div>a</div><div>b</div>", "a\nb"},
        {"gmail blank line", "<div>Hi</div><div><br></div><div>Thanks</div>", "Hi\n\nThanks"},
        {"outlook paragraphs",
         "<p class=MsoNormal>Hi<o:p></o:p></p><p class=MsoNormal><o:p>&nbsp;</o:p></p>"
         "<p class=MsoNormal>Thanks<o:p></o:p></p>",
         "Hi\n\nThanks"},
        {"mastodon mention and hashtag: no url after them",
         "<p><span class=\"h-card\"><a href=\"https://m.example/@brand\" class=\"u-url "
         "mention\">@<span>brand</span></a></span> hi <a href=\"https://m.example/tags/help\" "
         "class=\"mention hashtag\" rel=\"tag\">#<span>help</span></a></p>",
         "@brand hi #help"},
        {"a class does not hide where a link goes",
         "<a class=\"mention\" href=\"https://evil.example/login\">https://bank.example/login</a>",
         "https://bank.example/login (https://evil.example/login)"},
        {"a class word inside another word is not a mention",
         "<a class=\"nomention\" href=\"https://m.example/@x\">@x</a>",
         "@x (https://m.example/@x)"},
        {"list", "<ul><li>one</li><li>two</li></ul>", "- one\n- two"},
        {"ordered list", "<ol><li>x</li><li>y</li></ol>", "- x\n- y"},
        {"nested list", "<ul><li>a<ul><li>b</li></ul></li><li>c</li></ul>", "- a\n  - b\n- c"},
        /* libxml2 puts leading body text in an implied <p> */
        {"text around a list", "before<ul><li>item</li></ul>after", "before\n\n- item\nafter"},
        {"table", "<table><tr><td>A</td><td>B</td></tr><tr><td>C</td><td>D</td></tr></table>",
         "A B\nC D"},
        {"headings", "<h1>Title</h1>text<h2>Sub</h2>more", "Title\n\ntext\n\nSub\n\nmore"},
        {"blockquote", "<blockquote>q</blockquote>after", "q\n\nafter"},
        {"link", "<a href=\"https://example.com/x\">click here</a>",
         "click here (https://example.com/x)"},
        {"link equal to its text", "<a href=\"https://example.com/\">https://example.com</a>",
         "https://example.com"},
        {"link text without scheme", "<a href=\"http://example.com\">example.com</a>",
         "example.com"},
        {"mailto", "<a href=\"mailto:a@example.com\">a@example.com</a>", "a@example.com"},
        {"mailto with a name", "<a href=\"mailto:a@example.com\">Alice</a>",
         "Alice (mailto:a@example.com)"},
        {"anchor link", "<a href=\"#top\">top</a>", "top"},
        {"javascript link", "<a href=\"javascript:void(0)\">x</a>", "x"},
        {"empty link first", "<a href=\"https://x.example\"></a>", ""},
        {"image link", "<a href=\"https://example.com\"><img src=\"logo.png\"></a>", ""},
        {"spaces in a link", "<a href='http://x.example'> spaced </a>after",
         "spaced (http://x.example) after"},
        {"scripts and styles dropped", "<script>alert(1)</script><style>p{}</style>visible",
         "visible"},
        {"head dropped", "<html><head><title>T</title></head><body>b</body></html>", "b"},
        {"entities", "&lt;tag&gt; &amp; &quot;q&quot; &#3626; &eacute; &nbsp;x &#x1F600;",
         "<tag> & \"q\" \xe0\xb8\xaa \xc3\xa9 x \xf0\x9f\x98\x80"},
        {"inline elements", "<b>bold</b> <i>it</i> <span>a</span><span>b</span>", "bold it ab"},
        {"pre keeps whitespace", "<pre>line1\n  indented\n\n\n\nend</pre>",
         "line1\n  indented\n\nend"},
        {"unclosed tags", "<p>a<p>b<div>c", "a\n\nb\n\nc"},
        {"comments", "a<!-- hidden -->b", "ab"},
        {"conditional comments", "<!--[if mso]><p>mso only</p><![endif]--><p>for all</p>",
         "for all"},
        {"invalid utf-8", "a\xff b \xc3", "a" FFFD " b " FFFD},
        {"meta charset ignored",
         "<meta charset=\"iso-8859-1\"><p>\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1\xe0\xb8\xaa</p>",
         "\xe0\xb8\xaa\xe0\xb8\xa7\xe0\xb8\xb1\xe0\xb8\xaa"},
        {"stray closing tags", "</div></p>a</b>", "a"},
        {"bare < and &", "a < b & c > d; x<3", "a < b & c > d; x<3"},
};

static void test_cases(void **state)
{
        (void)state;
        for (size_t i = 0; i < N(cases); i++) {
                char *got = omr_html_to_text(cases[i].in, strlen(cases[i].in));
                if (got == NULL)
                        fail_msg("%s: NULL", cases[i].name);
                if (strcmp(got, cases[i].want) != 0)
                        fail_msg("%s: got \"%s\", want \"%s\"", cases[i].name, got, cases[i].want);
                free(got);
        }
}

static void test_nul_and_null(void **state)
{
        (void)state;
        char *got = omr_html_to_text("a\0b", 3);
        assert_string_equal(got, "a" FFFD "b");
        free(got);
        got = omr_html_to_text(NULL, 0);
        assert_string_equal(got, "");
        free(got);
}

static void test_long_href(void **state)
{
        (void)state;
        size_t n = 3000;
        char *html = malloc(n + 64);
        assert_non_null(html);
        size_t len = (size_t)snprintf(html, n + 64, "<a href=\"https://t.example/");
        memset(html + len, 'x', n);
        snprintf(html + len + n, 64 - len, "\">track</a>");
        char *got = omr_html_to_text(html, strlen(html));
        assert_string_equal(got, "track");
        free(got);
        free(html);
}

/* Deep nesting: no recursion of ours; libxml2 stops reading at 256
 * levels (what follows is lost, nothing crashes). */
static void test_deep(void **state)
{
        (void)state;
        static const size_t depths[] = {200, 100000};
        for (size_t k = 0; k < N(depths); k++) {
                char *html = malloc(depths[k] * 5 + 16);
                assert_non_null(html);
                size_t cap = depths[k] * 5 + 16, used = 0;
                for (size_t i = 0; i < depths[k]; i++)
                        used += (size_t)snprintf(html + used, cap - used, "%s",
                                                 i % 2 ? "<div>" : "<b>");
                snprintf(html + used, cap - used, "deep");
                char *got = omr_html_to_text(html, strlen(html));
                assert_non_null(got);
                if (depths[k] < 256)
                        assert_string_equal(got, "deep");
                free(got);
                free(html);
        }
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_cases),
                cmocka_unit_test(test_nul_and_null),
                cmocka_unit_test(test_long_href),
                cmocka_unit_test(test_deep),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
