/*
 * redact: parsing redact=... and applying it to a value.
 *
 * Matching looks backwards. While the walk descends it keeps the member
 * names it passed through on the stack (struct chain, innermost first;
 * arrays push nothing, which is what makes them transparent). At each
 * struct member it asks whether some path ends there: its last name is the
 * member's, and the names before it are the chain's, innermost first. That
 * needs no per-path state, no allocation during the walk, and reads the
 * same as the rule in redact.h.
 *
 * Copying is lazy: a container is copied only once one of its elements
 * turned out to change, so a value with nothing to redact is walked and
 * returned as it is.
 */
#include "interceptors/redact.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct member_name {
    const char *ptr; /* into redact->text; not NUL-terminated */
    size_t len;      /* > 0 */
};

struct redact_path {
    const struct member_name *names; /* outermost first */
    size_t count;                    /* > 0 */
};

/* Immutable after redact_parse(). */
struct redact {
    char *text;                /* the list as given; names point into it */
    struct member_name *names; /* every path's names, path after path */
    struct redact_path *paths;
    size_t npaths;
};

/* The member names above the value being walked, innermost first. */
struct chain {
    const char *name;
    size_t len;
    const struct chain *up; /* NULL at the top of the value */
};

/* ---- parsing ---- */

static void fail(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void fail(char *why, size_t whylen, const char *fmt, ...)
{
    va_list ap;
    if (whylen == 0)
        return;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
}

static size_t count_char(const char *s, char c)
{
    size_t n = 0;
    for (; *s != '\0'; s++)
        n += (*s == c);
    return n;
}

/*
 * Splits one path, the `len` bytes at `p`, at its dots into r->names from
 * index *nnames on. Returns 0, or -1 with why when a name is empty.
 */
static int split_path(struct redact *r, const char *p, size_t len, size_t *nnames, char *why,
                      size_t whylen)
{
    struct redact_path *path = &r->paths[r->npaths];
    const char *end = p + len;

    path->names = &r->names[*nnames];
    path->count = 0;
    for (const char *name = p;;) {
        const char *dot = memchr(name, '.', (size_t)(end - name));
        const char *stop = dot != NULL ? dot : end;
        if (stop == name) {
            fail(why, whylen, "empty member name in '%.*s'", (int)len, p);
            return -1;
        }
        r->names[*nnames].ptr = name;
        r->names[*nnames].len = (size_t)(stop - name);
        (*nnames)++;
        path->count++;
        if (dot == NULL)
            break;
        name = dot + 1;
    }
    r->npaths++;
    return 0;
}

int redact_parse(const char *list, struct redact **out, char *why, size_t whylen)
{
    struct redact *r = mem_calloc(1, sizeof(*r));
    size_t commas = count_char(list, ',');
    size_t nnames = 0;
    int rc = -1;

    r->text = mem_strdup(list);
    /* Every comma starts one more path and every dot one more name. */
    r->paths = mem_calloc(commas + 1, sizeof(*r->paths));
    r->names = mem_calloc(commas + count_char(list, '.') + 1, sizeof(*r->names));
    for (const char *p = r->text;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma != NULL ? (size_t)(comma - p) : strlen(p);
        if (len == 0) {
            fail(why, whylen, "empty path in '%s'", list);
            goto out;
        }
        if (split_path(r, p, len, &nnames, why, whylen) < 0)
            goto out;
        if (comma == NULL)
            break;
        p = comma + 1;
    }
    *out = r;
    r = NULL;
    rc = 0;
out:
    redact_free(r);
    return rc;
}

void redact_free(struct redact *r)
{
    if (r == NULL)
        return;
    free(r->names);
    free(r->paths);
    free(r->text);
    free(r);
}

/* ---- matching ---- */

static int name_is(const struct member_name *n, const char *name, size_t len)
{
    return n->len == len && memcmp(n->ptr, name, len) == 0;
}

/* Whether path ends at member m of a struct that `up` leads to. The last
 * name is compared first: it rejects nearly every member at once. */
static int path_ends_at(const struct redact_path *path, const struct xr_value *m,
                        const struct chain *up)
{
    size_t i = path->count - 1;
    if (m->name == NULL || !name_is(&path->names[i], m->name, m->name_len))
        return 0;
    while (i-- > 0) {
        if (up == NULL || !name_is(&path->names[i], up->name, up->len))
            return 0;
        up = up->up;
    }
    return 1;
}

static int member_matches(const struct redact *r, const struct xr_value *m, const struct chain *up)
{
    for (size_t i = 0; i < r->npaths; i++) {
        if (path_ends_at(&r->paths[i], m, up))
            return 1;
    }
    return 0;
}

/* ---- copying ---- */

/* A copy of the node v alone: a container's copy still points at v's
 * elements, so it shares them until they are replaced. */
static struct xr_value *copy_node(const struct xr_value *v, struct arena *a)
{
    struct xr_value *copy = arena_alloc(a, sizeof(*copy));
    *copy = *v;
    return copy;
}

/* The placeholder for member m: same name, so the event keeps the key. */
static struct xr_value *placeholder(const struct xr_value *m, struct arena *a)
{
    struct xr_value *p = xr_value_new(a, XR_STRING);
    p->name = m->name;
    p->name_len = m->name_len;
    p->u.str.ptr = REDACT_PLACEHOLDER;
    p->u.str.len = sizeof(REDACT_PLACEHOLDER) - 1;
    return p;
}

/* An empty copy of the container list, then copies of its elements up to
 * (not including) `stop`: they are unchanged, but the copy needs its own
 * links between them. */
static struct xr_value *copy_head(const struct xr_value *list, const struct xr_value *stop,
                                  struct arena *a)
{
    struct xr_value *copy = copy_node(list, a);
    copy->u.list.first = NULL;
    copy->u.list.last = NULL;
    copy->u.list.count = 0;
    for (const struct xr_value *e = list->u.list.first; e != stop; e = e->next)
        xr_value_append(copy, copy_node(e, a));
    return copy;
}

static struct xr_value *walk(const struct redact *r, const struct xr_value *v,
                             const struct chain *up, struct arena *a);

/* The replacement for element e of list, or NULL when e stays as it is. */
static struct xr_value *walk_element(const struct redact *r, const struct xr_value *list,
                                     const struct xr_value *e, const struct chain *up,
                                     struct arena *a)
{
    if (list->type == XR_ARRAY)
        return walk(r, e, up, a);
    if (member_matches(r, e, up))
        return placeholder(e, a);
    struct chain here = {e->name, e->name_len, up};
    return walk(r, e, &here, a);
}

/*
 * The redacted copy of v, or NULL when nothing below v matches. `up` is the
 * chain of member names above v's elements.
 */
static struct xr_value *walk(const struct redact *r, const struct xr_value *v,
                             const struct chain *up, struct arena *a)
{
    struct xr_value *copy = NULL;

    if (v->type != XR_ARRAY && v->type != XR_STRUCT)
        return NULL;
    for (const struct xr_value *e = v->u.list.first; e != NULL; e = e->next) {
        struct xr_value *changed = walk_element(r, v, e, up, a);
        if (changed != NULL && copy == NULL)
            copy = copy_head(v, e, a);
        if (copy != NULL)
            xr_value_append(copy, changed != NULL ? changed : copy_node(e, a));
    }
    return copy;
}

const struct xr_value *redact_value(const struct redact *r, const struct xr_value *v,
                                    struct arena *arena)
{
    if (r == NULL || v == NULL)
        return v;
    struct xr_value *copy = walk(r, v, NULL, arena);
    return copy != NULL ? copy : v;
}
