/*
 * dashboard: the migration dashboard's files, served at / on the admin
 * address.
 *
 * The page is plain HTML, CSS and JavaScript, kept as ordinary files in
 * proxy/dashboard/ and compiled into the binary by CMake (no build step of
 * its own, nothing to install beside the binary). The files hold no data:
 * the page asks the admin API for routes, methods and metrics with the
 * operator's token, so serving them without one discloses nothing.
 */
#ifndef STRANGLER_PROXY_DASHBOARD_H
#define STRANGLER_PROXY_DASHBOARD_H

#include <stddef.h>

struct dashboard_asset {
    const char *path; /* "/", "/dashboard.js", ... */
    const char *content_type;
    const unsigned char *data;
    size_t len;
};

/* The dashboard's file at `path`, or NULL. The data is static. */
const struct dashboard_asset *dashboard_find(const char *path);

#endif
