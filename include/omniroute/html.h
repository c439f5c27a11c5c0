/* html.h — readable plain text from HTML (email bodies, later social
 * posts). Pure function over libxml2's HTML parser; any thread. */
#ifndef OMNIROUTE_HTML_H
#define OMNIROUTE_HTML_H

#include <stddef.h>

/* Readable plain text from an HTML document or fragment (libxml2's HTML
 * parser, recovering from errors; no network). Block elements (p, div, br,
 * li, tr, h1-6, blockquote) become line breaks, li gets "- ", a href keeps
 * the link as "text (url)" when they differ, script/style/head dropped,
 * entities decoded, whitespace collapsed, at most one blank line in a row.
 * Input must be UTF-8 (invalid bytes tolerated: replaced with U+FFFD, as
 * are NUL bytes; a <meta charset> in the document is ignored). Returns a
 * malloc'd UTF-8 string (never NULL except allocation failure). */
char *omr_html_to_text(const char *html, size_t len);

#endif
