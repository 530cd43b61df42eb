#include "unit.h"
#include "proxy/dashboard.h"

#include <string.h>

/* Whether `needle` occurs in the asset's bytes (they are not a C string). */
static int asset_contains(const struct dashboard_asset *a, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n <= a->len && i <= a->len - n; i++)
        if (memcmp(a->data + i, needle, n) == 0)
            return 1;
    return 0;
}

START_TEST(every_file_is_there_with_its_content_type)
{
    static const struct {
        const char *path, *type;
    } want[] = {
        {"/", "text/html; charset=utf-8"},
        {"/dashboard.js", "text/javascript; charset=utf-8"},
        {"/dashboard.css", "text/css; charset=utf-8"},
    };
    for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        const struct dashboard_asset *a = dashboard_find(want[i].path);
        ck_assert_msg(a != NULL, "%s is missing", want[i].path);
        ck_assert_str_eq(a->path, want[i].path);
        ck_assert_str_eq(a->content_type, want[i].type);
        ck_assert_ptr_nonnull(a->data);
        ck_assert_uint_gt(a->len, 100);
        /* The length is the file's: no NUL inside, and the terminator the
         * generator adds is one past the end. */
        ck_assert_ptr_null(memchr(a->data, '\0', a->len));
        ck_assert_uint_eq(a->data[a->len], 0);
    }
}
END_TEST

START_TEST(the_page_loads_the_script_and_the_stylesheet_and_nothing_inline)
{
    const struct dashboard_asset *page = dashboard_find("/");
    ck_assert_ptr_nonnull(page);
    ck_assert(asset_contains(page, "<!DOCTYPE html>"));
    ck_assert(asset_contains(page, "src=\"/dashboard.js\""));
    ck_assert(asset_contains(page, "href=\"/dashboard.css\""));
    /* The admin API serves it under CSP default-src 'self': an inline
     * style or script would be refused, and so would anything from
     * elsewhere. */
    ck_assert(!asset_contains(page, " style=\""));
    ck_assert(!asset_contains(page, " onclick=\""));
    ck_assert(!asset_contains(page, "<style"));
    ck_assert(!asset_contains(page, "http://"));
    ck_assert(!asset_contains(page, "https://"));
    ck_assert(asset_contains(page, "id=\"token\""));
    ck_assert(asset_contains(page, "id=\"new-share\""));
    const struct dashboard_asset *js = dashboard_find("/dashboard.js");
    ck_assert_ptr_nonnull(js);
    /* Text from the API goes in as text, never parsed as markup or code. */
    static const char *const banned[] = {".innerHTML",     ".outerHTML", "insertAdjacentHTML",
                                         "document.write", "eval(",      "new Function"};
    for (size_t i = 0; i < sizeof(banned) / sizeof(banned[0]); i++)
        ck_assert_msg(!asset_contains(js, banned[i]), "dashboard.js uses %s", banned[i]);
}
END_TEST

START_TEST(other_paths_are_not_the_dashboard)
{
    static const char *const others[] = {
        "",        "/index.html", "/dashboard.js/", "/dashboard.jsx", "//",
        "/routes", "/metrics",    "/methods",       "/DASHBOARD.JS",  "/dashboard.css?x",
    };
    for (size_t i = 0; i < sizeof(others) / sizeof(others[0]); i++)
        ck_assert_msg(dashboard_find(others[i]) == NULL, "%s", others[i]);
    ck_assert_ptr_null(dashboard_find(NULL));
}
END_TEST

Suite *dashboard_suite(void)
{
    Suite *s = suite_create("dashboard");
    TCase *tc = tcase_create("dashboard");
    tcase_set_timeout(tc, UNIT_TIMEOUT);
    tcase_add_test(tc, every_file_is_there_with_its_content_type);
    tcase_add_test(tc, the_page_loads_the_script_and_the_stylesheet_and_nothing_inline);
    tcase_add_test(tc, other_paths_are_not_the_dashboard);
    suite_add_tcase(s, tc);
    return s;
}
