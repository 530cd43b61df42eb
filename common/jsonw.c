#include "common/jsonw.h"

#include "common/decimal.h"
#include "common/utf8.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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
            unsigned cp;
            size_t n = utf8_decode(p + i, len - i, &cp);
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
    /* Short decimals (prices, ratios) without printf and strtod; the same
     * bytes either way. */
    size_t fast = decimal_format_short(out, d);
    if (fast != 0) {
        out[fast] = '\0';
        return fast;
    }
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
