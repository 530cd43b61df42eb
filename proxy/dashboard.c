#include "proxy/dashboard.h"

#include <string.h>

/* The arrays: generated at build time from proxy/dashboard/ by
 * proxy/dashboard/embed.cmake. Each ends in a NUL that is not the file's,
 * hence the - 1. */
#include "dashboard_assets.inc"

/* "/" only, not "/index.html" too: one address per file keeps what the
 * admin API serves without a token down to exactly these three. */
static const struct dashboard_asset assets[] = {
    {"/", "text/html; charset=utf-8", dashboard_index_html, sizeof(dashboard_index_html) - 1},
    {"/dashboard.js", "text/javascript; charset=utf-8", dashboard_dashboard_js,
     sizeof(dashboard_dashboard_js) - 1},
    {"/dashboard.css", "text/css; charset=utf-8", dashboard_dashboard_css,
     sizeof(dashboard_dashboard_css) - 1},
};

const struct dashboard_asset *dashboard_find(const char *path)
{
    if (path == NULL)
        return NULL;
    for (size_t i = 0; i < sizeof(assets) / sizeof(assets[0]); i++)
        if (strcmp(assets[i].path, path) == 0)
            return &assets[i];
    return NULL;
}
