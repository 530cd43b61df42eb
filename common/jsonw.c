#include "common/jsonw.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Length of the valid UTF-8 sequence at s (at most `avail` bytes), or 0 if
 * the bytes there are not valid UTF-8 (overlong forms, surrogates and code
 * points above U+10FFFF are invalid, per RFC 3629).
 */
static size_t utf8_sequence_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0];
    size_t n;
    unsigned int cp;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        n = 2;
        cp = c & 0x1f;
    } else if (c >= 0xe0 && c <= 0xef) {
        n = 3;
        cp = c & 0x0f;
    } else if (c >= 0xf0 && c <= 0xf4) {
        n = 4;
        cp = c & 0x07;
    } else {
        return 0;
    }
    if (avail < n)
        return 0;
    for (size_t i = 1; i < n; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
        (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return n;
}

void jsonw_string(struct buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0, run = 0;

    buf_reserve(b, len + 2);
    buf_append_char(b, '"');
    while (i < len) {
        unsigned char c = p[i];
        if (c >= 0x20 && c != '"' && c != '\\' && c < 0x80) {
            run++;
            i++;
            continue;
        }
        /* Flush the run of bytes that need no escaping in one copy. */
        buf_append(b, s + i - run, run);
        run = 0;
        if (c >= 0x80) {
            size_t n = utf8_sequence_len(p + i, len - i);
            if (n == 0) {
                buf_append(b, "\xef\xbf\xbd", 3); /* U+FFFD */
                i++;
            } else {
                buf_append(b, s + i, n);
                i += n;
            }
            continue;
        }
        switch (c) {
        case '"':
            buf_append(b, "\\\"", 2);
            break;
        case '\\':
            buf_append(b, "\\\\", 2);
            break;
        case '\n':
            buf_append(b, "\\n", 2);
            break;
        case '\r':
            buf_append(b, "\\r", 2);
            break;
        case '\t':
            buf_append(b, "\\t", 2);
            break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 0x0f]};
            buf_append(b, esc, sizeof(esc));
        }
        }
        i++;
    }
    buf_append(b, s + i - run, run);
    buf_append_char(b, '"');
}

void jsonw_cstring(struct buf *b, const char *s)
{
    jsonw_string(b, s, strlen(s));
}

void jsonw_i64(struct buf *b, int64_t v)
{
    buf_append_i64(b, v);
}

size_t jsonw_format_double(char *out, double d)
{
    /* Fifteen significant digits round-trip for most values that people
     * write; try it first and fall back to 16 and 17, which always do. */
    int n = 0;
    for (int prec = 15; prec <= 17; prec++) {
        n = snprintf(out, 32, "%.*g", prec, d);
        if (strtod(out, NULL) == d)
            break;
    }
    if (strpbrk(out, ".eEni") == NULL) {
        out[n++] = '.';
        out[n++] = '0';
        out[n] = '\0';
    }
    return (size_t)n;
}

int jsonw_double(struct buf *b, double d)
{
    if (!isfinite(d))
        return -1;
    char tmp[32];
    size_t n = jsonw_format_double(tmp, d);
    buf_append(b, tmp, n);
    return 0;
}
