/*
 * control: the configuration in force, and the ways it changes while the
 * process runs.
 *
 * Migration teams move a method from the legacy to a new service by
 * flipping its route, and move it back the same way when something looks
 * wrong; operators edit routes.conf and reload it. Both paths meet here:
 *
 *   reload  (SIGHUP, POST /reload): re-reads routes.conf. A file with errors
 *           is refused with its FILE:LINE messages and the running table
 *           stays.
 *   flip    (PUT /routes/NAME): rewrites the action of one route in the text
 *           the running table was read from, parses the result exactly as a
 *           reload would (so a flip is validated by the same rules as the
 *           file), writes it back to routes.conf atomically with its
 *           comments and layout kept (conffile.h), and only then installs it.
 *           A file edited on disk but not yet reloaded is not silently
 *           applied by a flip: the flip is refused until it is reloaded.
 *
 * Installing a snapshot is the caller's hook (main.c hands it to every
 * worker and waits until they serve from it). Each request holds the
 * snapshot it started with, so it sees the old table or the new one, never
 * a mix.
 *
 * Every change is audited: a log line saying who (the admin token's name,
 * or the signal), what, and before -> after, and a strangler.route.changed
 * event in the spool, published like any intercepted call, so new services
 * and humans see when ownership of a method moved.
 *
 * Main thread only.
 */
#ifndef STRANGLER_PROXY_CONTROL_H
#define STRANGLER_PROXY_CONTROL_H

#include "common/buf.h"
#include "interceptors/spool.h"
#include "proxy/config.h"

#include <stddef.h>
#include <stdint.h>

struct control;

/* Called with each snapshot that becomes the one in force (borrowed: take
 * a reference to keep it). `old` is the one it replaces. */
typedef void (*control_install_fn)(void *arg, struct config *old, struct config *next);

/* One route whose action or match moved. before is NULL for a route a
 * reload added, after NULL for one it removed; match_before is the route's
 * former match when a reload changed it, else NULL. */
struct control_change {
    char *route;
    char *before;
    char *after;
    char *match_before;
};

/* What a reload or a flip did, for the admin API's answer. */
struct control_outcome {
    int status;          /* 200, or the HTTP status of a refusal: 400, 404, 409, 500 */
    struct buf error;    /* why it was refused, one line; empty on success */
    struct buf messages; /* FILE:LINE lines: a refused file's errors, an accepted one's warnings */
    struct control_change *changes;
    size_t nchanges;
};

void control_outcome_init(struct control_outcome *o);
void control_outcome_dispose(struct control_outcome *o);

/* The last change of a route, for GET /routes. */
struct control_audit {
    int64_t at_us; /* wall clock */
    char *by;
    char *before; /* NULL: the route was added */
};

/*
 * Takes over cfg (its reference), loaded from cfg->path. Events go to spool
 * (borrowed, may be NULL for none); install is called for each new
 * snapshot. Free with control_free().
 */
struct control *control_new(struct config *cfg, struct spool *spool, control_install_fn install,
                            void *arg);

/* Drops the control's reference to the snapshot in force. NULL is a no-op. */
void control_free(struct control *ctl);

/* The snapshot in force; borrowed, valid until the next reload or flip. */
struct config *control_config(const struct control *ctl);

/* Re-reads routes.conf on behalf of `who`. Returns 0 when the new table is
 * in force, -1 when it was refused (o says why). */
int control_reload(struct control *ctl, const char *who, struct control_outcome *o);

/*
 * Sets the action of route `name` to `action` (routes.conf syntax) on
 * behalf of `who`: validated, written to routes.conf, then installed.
 * Setting the action a route already has changes nothing and succeeds.
 * Returns 0, or -1 with o->status 400 (not a valid action), 404 (no such
 * route), 409 (routes.conf changed on disk since it was read) or 500 (it
 * could not be read or written; nothing was applied).
 */
int control_flip(struct control *ctl, const char *who, const char *name, const char *action,
                 struct control_outcome *o);

/* The last flip or reload that changed route `name`, or NULL. */
const struct control_audit *control_last_change(const struct control *ctl, const char *name);

#endif
