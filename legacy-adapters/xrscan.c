#include "legacy-adapters/xrscan.h"

#include "common/utf8.h"

#include <libxml/parserInternals.h>
#include <string.h>
#include <strings.h>

/*
 * Section numbers below are those of XML 1.0 (fifth edition) unless they
 * name Namespaces in XML 1.0 (third edition).
 */

enum scan_state {
    AT_START = 0, /* nothing read: an XML declaration may come, then the root */
    IN_CONTENT,   /* inside the root element */
    IN_EPILOG,    /* after the root element: only whitespace and comments */
    ENDED,        /* XRSCAN_DONE was returned */
    DECLINED,     /* XRSCAN_DECLINE was returned */
};

/* What a construct that makes no token (a comment, an empty CDATA section)
 * returns to the loop that reads on. Never seen by callers. */
#define SKIP (-1)

/* Names longer than this are declined. XML-RPC's element names are far
 * shorter, prefix included, and libxml2 has limits of its own on long
 * names (XML_MAX_NAMELEN) that it alone should apply. */
#define MAX_QNAME 64

/* ------------------------------------------------------------------------ */
/* Characters                                                               */

/* How text reads each byte. */
enum byte_class {
    PLAIN = 0, /* a character that is data as it stands */
    HIGH,      /* starts a multi-byte UTF-8 sequence, or is invalid */
    BRACKET,   /* ']': data, unless it starts "]]>" */
    STOP,      /* '<', '&', CR: markup, a reference, a line end to normalise */
    BAD,       /* a control character that is no XML Char at all (section 2.2) */
};

/* One letter per class, to keep the table readable. */
#define P PLAIN
#define H HIGH
#define K BRACKET
#define S STOP
#define B BAD
/* clang-format off */
static const unsigned char byte_class[256] = {
    B, B, B, B, B, B, B, B, B, P, P, B, B, S, B, B, /* 0x00 */
    B, B, B, B, B, B, B, B, B, B, B, B, B, B, B, B, /* 0x10 */
    P, P, P, P, P, P, S, P, P, P, P, P, P, P, P, P, /* 0x20 */
    P, P, P, P, P, P, P, P, P, P, P, P, S, P, P, P, /* 0x30 */
    P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, /* 0x40 */
    P, P, P, P, P, P, P, P, P, P, P, P, P, K, P, P, /* 0x50 */
    P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, /* 0x60 */
    P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, P, /* 0x70 */
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0x80 */
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0x90 */
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0xa0 */
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0xb0 */
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0xc0 */
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0xd0 */
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0xe0 */
    H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, H, /* 0xf0 */
};
/* clang-format on */
#undef P
#undef H
#undef K
#undef S
#undef B

static int is_space(char c)
{
    /* Production S (section 2.3). */
    return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

static const char *skip_space(const char *p, const char *end)
{
    while (p < end && is_space(*p))
        p++;
    return p;
}

/* Whether cp is a character XML allows, production Char (section 2.2). */
static int is_char(unsigned cp)
{
    return cp == 0x9 || cp == 0xa || cp == 0xd || (cp >= 0x20 && cp <= 0xd7ff) ||
           (cp >= 0xe000 && cp <= 0xfffd) || (cp >= 0x10000 && cp <= 0x10ffff);
}

/*
 * Length of the character at p (p < end) when it is valid UTF-8 and an XML
 * Char (section 2.2), else 0. utf8_decode already refuses overlong forms,
 * surrogates and code points beyond U+10FFFF.
 */
static size_t char_len(const char *p, const char *end)
{
    unsigned char c = (unsigned char)*p;
    unsigned cp = 0;

    if (c < 0x80)
        return byte_class[c] == BAD ? 0 : 1;
    size_t n = utf8_decode((const unsigned char *)p, (size_t)(end - p), &cp);
    return n != 0 && is_char(cp) ? n : 0;
}

/* Writes cp as UTF-8 into out (room for 4 bytes); returns the length. */
static size_t utf8_encode(unsigned cp, char *out)
{
    if (cp < 0x80) {
        out[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        out[0] = (char)(0xc0 | cp >> 6);
        out[1] = (char)(0x80 | (cp & 0x3f));
        return 2;
    }
    if (cp < 0x10000) {
        out[0] = (char)(0xe0 | cp >> 12);
        out[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        out[2] = (char)(0x80 | (cp & 0x3f));
        return 3;
    }
    out[0] = (char)(0xf0 | cp >> 18);
    out[1] = (char)(0x80 | (cp >> 12 & 0x3f));
    out[2] = (char)(0x80 | (cp >> 6 & 0x3f));
    out[3] = (char)(0x80 | (cp & 0x3f));
    return 4;
}

static int set_text(struct xrscan *s, const char *text, size_t len, int stable)
{
    s->text = text;
    s->text_len = len;
    s->text_stable = stable;
    return XRSCAN_TEXT;
}

/* ------------------------------------------------------------------------ */
/* Names and tags                                                           */

/*
 * Which bytes names are made of (section 2.3, NameStartChar and NameChar,
 * less ':' which QName gives its own role): ASCII only. Names with other
 * characters are declined.
 */
enum name_class {
    NOT_NAME = 0,
    NAME_START, /* a letter or '_': may start a name */
    NAME_MORE,  /* a digit, '.' or '-': may follow */
};

#define S NAME_START
#define N NAME_MORE
/* clang-format off */
static const unsigned char name_class[256] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x00 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x10 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, N, N, 0, /* 0x20 */
    N, N, N, N, N, N, N, N, N, N, 0, 0, 0, 0, 0, 0, /* 0x30 */
    0, S, S, S, S, S, S, S, S, S, S, S, S, S, S, S, /* 0x40 */
    S, S, S, S, S, S, S, S, S, S, S, 0, 0, 0, 0, S, /* 0x50 */
    0, S, S, S, S, S, S, S, S, S, S, S, S, S, S, S, /* 0x60 */
    S, S, S, S, S, S, S, S, S, S, S, 0, 0, 0, 0, 0, /* 0x70 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x80 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0x90 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xa0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xb0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xc0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xd0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xe0 */
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, /* 0xf0 */
};
/* clang-format on */
#undef S
#undef N

static int is_name_start(char c)
{
    return name_class[(unsigned char)c] == NAME_START;
}

static int is_name_char(char c)
{
    return name_class[(unsigned char)c] != NOT_NAME;
}

/* "xml" in any case: names starting so are reserved (section 2.3), and
 * libxml2 gives the xml and xmlns prefixes meanings of their own. */
static int is_reserved(const char *p, size_t len)
{
    return len >= 3 && (p[0] | 0x20) == 'x' && (p[1] | 0x20) == 'm' && (p[2] | 0x20) == 'l';
}

/*
 * Reads a qualified name at p: QName ::= (Prefix ':')? LocalPart, each an
 * NCName (Namespaces, section 4). Only ASCII name characters are taken;
 * section 2.3 allows many more, and those names are declined. Returns the
 * name's length and sets *local to its local part, or returns 0 to decline.
 */
static size_t scan_qname(const char *p, const char *end, const char **local)
{
    const char *q = p, *colon = NULL;

    if (q == end || !is_name_start(*q))
        return 0;
    for (;;) {
        for (q++; q < end && is_name_char(*q); q++)
            ;
        if (q == end || *q != ':')
            break;
        if (colon != NULL || q + 1 == end || !is_name_start(q[1]))
            return 0;
        colon = q++;
    }
    size_t len = (size_t)(q - p);
    if (len > MAX_QNAME || (colon != NULL && is_reserved(p, (size_t)(colon - p))))
        return 0;
    *local = colon != NULL ? colon + 1 : p;
    return len;
}

/*
 * A start tag without attributes, STag ::= '<' Name S? '>', or an
 * empty-element tag, EmptyElemTag ::= '<' Name S? '/>' (section 3.1). An
 * attribute, and anything else after the name, is declined.
 */
static int scan_start_tag(struct xrscan *s)
{
    const char *name = s->cur + 1, *local = NULL;
    size_t len = scan_qname(name, s->end, &local);

    if (len == 0 || s->depth == XRSCAN_MAX_DEPTH)
        return XRSCAN_DECLINE;
    const char *p = skip_space(name + len, s->end);
    if (p < s->end && *p == '>') {
        s->empty = 0;
        p++;
    } else if (s->end - p >= 2 && p[0] == '/' && p[1] == '>') {
        s->empty = 1;
        p += 2;
    } else {
        return XRSCAN_DECLINE;
    }
    s->open[s->depth].qname = name;
    s->open[s->depth].len = len;
    s->open[s->depth].local = (size_t)(local - name);
    s->depth++;
    s->name = local;
    s->name_len = len - (size_t)(local - name);
    s->cur = p;
    return XRSCAN_START;
}

/* Closes the innermost open element, whose end tag has been read. */
static int end_element(struct xrscan *s)
{
    s->depth--;
    s->name = s->open[s->depth].qname + s->open[s->depth].local;
    s->name_len = s->open[s->depth].len - s->open[s->depth].local;
    if (s->depth == 0)
        s->state = IN_EPILOG;
    return XRSCAN_END;
}

/*
 * An end tag, ETag ::= '</' Name S? '>' (section 3.1), whose name must be
 * the innermost start tag's, prefix included (WFC: Element Type Match).
 */
static int scan_end_tag(struct xrscan *s)
{
    const char *name = s->cur + 2;
    const char *open = s->open[s->depth - 1].qname;
    size_t len = s->open[s->depth - 1].len;

    if ((size_t)(s->end - name) < len || !xrscan_same(name, open, len))
        return XRSCAN_DECLINE;
    const char *p = skip_space(name + len, s->end);
    if (p == s->end || *p != '>')
        return XRSCAN_DECLINE;
    s->cur = p + 1;
    return end_element(s);
}

/* ------------------------------------------------------------------------ */
/* Comments, CDATA sections, references, text                               */

/*
 * Comment ::= '<!--' ((Char - '-') | ('-' (Char - '-')))* '-->' (section
 * 2.5): "--" may only close the comment, so "<!-- a -- b -->" and
 * "<!-- a --->" are both refused. Comments make no token.
 */
static int scan_comment(struct xrscan *s)
{
    const char *p = s->cur + 4, *end = s->end;

    while (p < end) {
        if (*p == '-' && end - p >= 2 && p[1] == '-') {
            if (end - p < 3 || p[2] != '>')
                return XRSCAN_DECLINE;
            s->cur = p + 3;
            return SKIP;
        }
        size_t n = char_len(p, end);
        if (n == 0)
            return XRSCAN_DECLINE;
        p += n;
    }
    return XRSCAN_DECLINE; /* not closed */
}

/*
 * CDSect ::= '<![CDATA[' CData ']]>' (section 2.7): the content is text as
 * it stands. A CR inside is declined: section 2.11 wants it read as LF, as
 * everywhere else, but libxml2 2.9's push parser hands CDATA content on
 * with its CRs; which of the two a given libxml2 does is left to libxml2.
 */
static int scan_cdata(struct xrscan *s)
{
    const char *start = s->cur + 9, *p = start, *end = s->end;

    for (;;) {
        if (p == end || *p == '\r')
            return XRSCAN_DECLINE;
        if (*p == ']' && end - p >= 3 && p[1] == ']' && p[2] == '>')
            break;
        size_t n = char_len(p, end);
        if (n == 0)
            return XRSCAN_DECLINE;
        p += n;
    }
    s->cur = p + 3;
    if (p == start)
        return SKIP;
    return set_text(s, start, (size_t)(p - start), 1);
}

/*
 * CharRef ::= '&#' [0-9]+ ';' | '&#x' [0-9a-fA-F]+ ';' (section 4.1),
 * whose value must be a Char (WFC: Legal Character): no &#0;, no
 * surrogates, nothing beyond U+10FFFF. Leading zeros are allowed.
 */
static int scan_char_ref(struct xrscan *s)
{
    const char *p = s->cur + 2, *end = s->end;
    unsigned base = 10, cp = 0;
    size_t digits = 0;

    if (p < end && *p == 'x') {
        base = 16;
        p++;
    }
    for (; p < end; p++, digits++) {
        unsigned d;
        if (*p >= '0' && *p <= '9')
            d = (unsigned)(*p - '0');
        else if (base == 16 && (*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')
            d = (unsigned)((*p | 0x20) - 'a' + 10);
        else
            break;
        cp = cp * base + d;
        if (cp > 0x10ffff)
            return XRSCAN_DECLINE;
    }
    if (digits == 0 || p == end || *p != ';' || !is_char(cp))
        return XRSCAN_DECLINE;
    s->cur = p + 1;
    return set_text(s, s->ref, utf8_encode(cp, s->ref), 0);
}

/*
 * A reference in content (section 4.1): a character reference, or one of
 * the five entities every processor knows (section 4.6). Any other entity
 * would have to be declared in a DTD, and DTDs are declined.
 */
static int scan_reference(struct xrscan *s)
{
    static const struct {
        const char *ref; /* after the '&' */
        size_t len;
        const char *text;
    } predefined[] = {
        {"lt;", 3, "<"}, {"gt;", 3, ">"}, {"amp;", 4, "&"}, {"quot;", 5, "\""}, {"apos;", 5, "'"},
    };
    const char *p = s->cur + 1;
    size_t avail = (size_t)(s->end - p);

    if (avail > 0 && *p == '#')
        return scan_char_ref(s);
    for (size_t i = 0; i < sizeof(predefined) / sizeof(predefined[0]); i++) {
        if (avail >= predefined[i].len && memcmp(p, predefined[i].ref, predefined[i].len) == 0) {
            s->cur = p + predefined[i].len;
            return set_text(s, predefined[i].text, 1, 1);
        }
    }
    return XRSCAN_DECLINE;
}

/*
 * A run of character data, CharData ::= [^<&]* - ([^<&]* ']]>' [^<&]*)
 * (section 2.4), up to the next markup, reference or CR. Every character
 * must be a Char (section 2.2) in valid UTF-8.
 */
static int scan_text(struct xrscan *s)
{
    const char *start = s->cur, *p = start, *end = s->end;

    for (;;) {
        while (p < end && byte_class[(unsigned char)*p] == PLAIN)
            p++;
        if (p == end)
            break;
        enum byte_class c = byte_class[(unsigned char)*p];
        if (c == STOP)
            break;
        if (c == HIGH) {
            size_t n = char_len(p, end);
            if (n == 0)
                return XRSCAN_DECLINE;
            p += n;
        } else if (c == BRACKET) {
            if (end - p >= 3 && p[1] == ']' && p[2] == '>')
                return XRSCAN_DECLINE;
            p++;
        } else {
            return XRSCAN_DECLINE;
        }
    }
    if (p == start)
        return XRSCAN_DECLINE;
    s->cur = p;
    return set_text(s, start, (size_t)(p - start), 1);
}

/* A CR: "\r\n" and a lone "\r" are both read as "\n" (section 2.11). */
static int scan_cr(struct xrscan *s)
{
    s->cur++;
    if (s->cur < s->end && *s->cur == '\n')
        return scan_text(s); /* the LF starts the next run */
    return set_text(s, "\n", 1, 1);
}

/* Something starting with '<' inside the root element. A processing
 * instruction ("<?") and any other declaration ("<!") are declined. */
static int scan_markup(struct xrscan *s)
{
    size_t avail = (size_t)(s->end - s->cur);

    if (avail < 2)
        return XRSCAN_DECLINE;
    if (is_name_start(s->cur[1]))
        return scan_start_tag(s);
    if (s->cur[1] == '/')
        return scan_end_tag(s);
    if (avail >= 4 && memcmp(s->cur, "<!--", 4) == 0)
        return scan_comment(s);
    if (avail >= 9 && memcmp(s->cur, "<![CDATA[", 9) == 0)
        return scan_cdata(s);
    return XRSCAN_DECLINE;
}

/* element ::= EmptyElemTag | STag content ETag (section 3.1). */
static int scan_content(struct xrscan *s)
{
    int tok;

    if (s->empty) {
        s->empty = 0;
        return end_element(s);
    }
    do {
        if (s->skip_blank)
            s->cur = skip_space(s->cur, s->end);
        if (s->cur == s->end)
            return XRSCAN_DECLINE; /* an element is still open */
        switch (*s->cur) {
        case '<':
            tok = scan_markup(s);
            break;
        case '&':
            tok = scan_reference(s);
            break;
        case '\r':
            tok = scan_cr(s);
            break;
        default:
            tok = scan_text(s);
            break;
        }
    } while (tok == SKIP);
    return tok;
}

/* ------------------------------------------------------------------------ */
/* Prolog and epilog                                                        */

/*
 * One pseudo-attribute of the XML declaration, S name Eq ("'" value "'" |
 * '"' value '"') with Eq ::= S? '=' S? (section 2.8). Returns 1 and moves
 * *pp past it when `name` is there, 0 when it is not, -1 when it is there
 * but malformed.
 */
static int decl_attr(const char **pp, const char *end, const char *name, const char **value,
                     size_t *len)
{
    size_t n = strlen(name);
    const char *p = skip_space(*pp, end);

    if (p == *pp || (size_t)(end - p) < n || memcmp(p, name, n) != 0)
        return 0;
    p = skip_space(p + n, end);
    if (p == end || *p != '=')
        return -1;
    p = skip_space(p + 1, end);
    if (p == end || (*p != '"' && *p != '\''))
        return -1;
    const char *close = memchr(p + 1, *p, (size_t)(end - p - 1));
    if (close == NULL)
        return -1;
    *value = p + 1;
    *len = (size_t)(close - p - 1);
    *pp = close + 1;
    return 1;
}

static int value_is(const char *value, size_t len, const char *want)
{
    return len == strlen(want) && memcmp(value, want, len) == 0;
}

/*
 * XMLDecl ::= '<?xml' VersionInfo EncodingDecl? SDDecl? S? '?>' (section
 * 2.8). Taken only for version 1.0 and no encoding or UTF-8 in any case
 * (section 4.3.3: encoding names are case-insensitive), which libxml2 reads
 * natively, as it reads a body without a declaration; other encodings are
 * libxml2's to convert. Returns 0 with the declaration read, or -1.
 */
static int scan_xml_decl(struct xrscan *s)
{
    const char *p = s->cur + 5, *value = NULL;
    size_t len = 0;

    if (decl_attr(&p, s->end, "version", &value, &len) != 1 || !value_is(value, len, "1.0"))
        return -1;
    int r = decl_attr(&p, s->end, "encoding", &value, &len);
    if (r < 0 || (r == 1 && (len != 5 || strncasecmp(value, "UTF-8", 5) != 0)))
        return -1;
    r = decl_attr(&p, s->end, "standalone", &value, &len);
    if (r < 0 || (r == 1 && !value_is(value, len, "yes") && !value_is(value, len, "no")))
        return -1;
    p = skip_space(p, s->end);
    if (s->end - p < 2 || p[0] != '?' || p[1] != '>')
        return -1;
    s->cur = p + 2;
    return 0;
}

/* Whether a comment starts at the current position. */
static int at_comment(const struct xrscan *s)
{
    return s->end - s->cur >= 4 && memcmp(s->cur, "<!--", 4) == 0;
}

/*
 * document ::= prolog element Misc*, prolog ::= XMLDecl? Misc* (section
 * 2.1; a doctypedecl is declined). Reads up to the root's start tag.
 */
static int scan_prolog(struct xrscan *s)
{
    /* The declaration is only one at the very start: "<?xml" then S. A
     * byte order mark is declined (libxml2 skips it). */
    if (s->end - s->cur >= 6 && memcmp(s->cur, "<?xml", 5) == 0 && is_space(s->cur[5]) &&
        scan_xml_decl(s) < 0)
        return XRSCAN_DECLINE;
    for (;;) {
        s->cur = skip_space(s->cur, s->end);
        if (s->cur == s->end || *s->cur != '<')
            return XRSCAN_DECLINE; /* no root element, or text before it */
        if (!at_comment(s))
            break;
        if (scan_comment(s) == XRSCAN_DECLINE)
            return XRSCAN_DECLINE;
    }
    int tok = scan_start_tag(s);
    if (tok == XRSCAN_START)
        s->state = IN_CONTENT;
    return tok;
}

/* Misc* after the root element (section 2.1): whitespace and comments. */
static int scan_epilog(struct xrscan *s)
{
    for (;;) {
        s->cur = skip_space(s->cur, s->end);
        if (s->cur == s->end) {
            s->state = ENDED;
            return XRSCAN_DONE;
        }
        if (!at_comment(s) || scan_comment(s) == XRSCAN_DECLINE)
            return XRSCAN_DECLINE; /* "Extra content at the end of the document" */
    }
}

/* ------------------------------------------------------------------------ */

void xrscan_init(struct xrscan *s, const char *body, size_t len)
{
    memset(s, 0, offsetof(struct xrscan, open));
    s->cur = body;
    s->end = body + len;
    s->state = AT_START;
    /* libxml2 refuses single texts, comments and CDATA sections of
     * XML_MAX_TEXT_LENGTH bytes and more, and pending input beyond
     * XML_MAX_LOOKUP_LIMIT; a body below both cannot reach either. */
    if (len == 0 || len >= XML_MAX_TEXT_LENGTH || len >= XML_MAX_LOOKUP_LIMIT)
        s->state = DECLINED;
}

enum xrscan_token xrscan_next(struct xrscan *s)
{
    int tok;

    switch (s->state) {
    case AT_START:
        tok = scan_prolog(s);
        break;
    case IN_CONTENT:
        tok = scan_content(s);
        break;
    case IN_EPILOG:
        tok = scan_epilog(s);
        break;
    case ENDED:
        return XRSCAN_DONE;
    default:
        return XRSCAN_DECLINE;
    }
    if (tok == XRSCAN_DECLINE)
        s->state = DECLINED;
    return (enum xrscan_token)tok;
}
