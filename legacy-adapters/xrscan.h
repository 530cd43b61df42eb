/*
 * xrscan: a strict scanner for the XML that XML-RPC clients really send.
 *
 * xmlrpc.c parses with libxml2, which handles all of XML and costs most of
 * an adapted request's CPU. Almost every body is the same small subset of
 * XML: UTF-8, elements without attributes, text with the predefined entities
 * and character references, now and then a CDATA section or a comment. This
 * scanner reads exactly that subset in one pass, without allocating, and
 * checks well-formedness (XML 1.0, fifth edition) as it goes.
 *
 * It is strict in one direction only. Whatever it accepts, libxml2 accepts
 * too and reads as the same elements and text. Whatever it is not sure of
 * (an XML declaration other than version 1.0 in UTF-8, a byte order mark, a
 * DOCTYPE, an attribute, a processing instruction, an entity other than the
 * five predefined ones, a body of libxml2's size limits, and every error)
 * it declines with XRSCAN_DECLINE, and the caller parses the whole body
 * again with libxml2, whose verdict and messages stay the reference.
 *
 * The scanner knows nothing of XML-RPC: it hands out start tags, end tags
 * and pieces of character data in document order. It owns no memory; the
 * body must outlive it.
 */
#ifndef STRANGLER_ADAPTERS_XRSCAN_H
#define STRANGLER_ADAPTERS_XRSCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

enum xrscan_token {
    XRSCAN_DECLINE = 0, /* not for the scanner: parse the body with libxml2 */
    XRSCAN_START,       /* a start tag, or the start of an empty-element tag */
    XRSCAN_END,         /* the end tag matching the innermost open start tag */
    XRSCAN_TEXT,        /* a piece of character data, entities and CR-LF resolved */
    XRSCAN_DONE,        /* the document ended and was well formed */
};

/* Open elements the scanner follows; deeper documents are declined. Below
 * libxml2's own limit (256, xmlParserMaxDepth) so that libxml2 is the one
 * to refuse anything deeper. */
#define XRSCAN_MAX_DEPTH 200

/*
 * The scanner's state and its current token. The layout is public because
 * callers keep the scanner on their stack; read only the token fields, and
 * set skip_blank as the caller needs.
 *
 * After XRSCAN_START and XRSCAN_END, name/name_len is the element's local
 * name (a prefix such as "ex:" is dropped, as namespace-aware parsers do).
 * After XRSCAN_TEXT, text/text_len is the piece of text (never empty, never
 * NUL-terminated). text_stable says the piece stays valid as long as the
 * body (it points into the body or to a constant); otherwise it is only
 * valid until the next call.
 */
struct xrscan {
    /* Set by the caller, at any time: character data made of whitespace
     * alone (S, section 2.3) may be dropped rather than returned, because
     * the caller would ignore it. 0 after xrscan_init(). */
    int skip_blank;

    const char *name;
    size_t name_len;
    const char *text;
    size_t text_len;
    int text_stable;

    /* Private. */
    const char *cur; /* the next byte to read */
    const char *end;
    int state;   /* where in the document: enum scan_state in xrscan.c */
    int empty;   /* the last XRSCAN_START was an empty-element tag: its end is next */
    char ref[4]; /* a character reference, encoded as UTF-8 */
    unsigned depth;
    struct {
        const char *qname; /* as written in the start tag, prefix included */
        size_t len;
        size_t local; /* where the local name starts in qname */
    } open[XRSCAN_MAX_DEPTH];
};

/* Whether the `n` bytes at a and b are the same: memcmp(a, b, n) == 0,
 * inline, for the short names of markup where a call costs more than the
 * comparison. */
static inline int xrscan_same(const char *a, const char *b, size_t n)
{
    uint64_t x, y;
    uint32_t u, v;

    /* Overlapping loads cover every length from 4 up without a byte loop. */
    if (n >= 8) {
        for (; n > 8; n -= 8, a += 8, b += 8) {
            memcpy(&x, a, 8);
            memcpy(&y, b, 8);
            if (x != y)
                return 0;
        }
        memcpy(&x, a + n - 8, 8);
        memcpy(&y, b + n - 8, 8);
        return x == y;
    }
    if (n >= 4) {
        memcpy(&u, a, 4);
        memcpy(&v, b, 4);
        if (u != v)
            return 0;
        memcpy(&u, a + n - 4, 4);
        memcpy(&v, b + n - 4, 4);
        return u == v;
    }
    for (size_t i = 0; i < n; i++)
        if (a[i] != b[i])
            return 0;
    return 1;
}

/* Starts scanning the `len` bytes at body. */
void xrscan_init(struct xrscan *s, const char *body, size_t len);

/*
 * Reads the next token and returns its kind. After XRSCAN_DECLINE or
 * XRSCAN_DONE every further call returns the same.
 */
enum xrscan_token xrscan_next(struct xrscan *s);

#endif
