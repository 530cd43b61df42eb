#include "common/files.h"

#include "common/mem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int files_make_dirs(const char *path)
{
    char *tmp = mem_strdup(path);
    int rc = -1;
    for (char *p = tmp + 1; *p != '\0'; p++) {
        if (*p != '/')
            continue;
        *p = '\0';
        if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
            goto out;
        *p = '/';
    }
    if (mkdir(tmp, 0755) < 0 && errno != EEXIST)
        goto out;
    rc = 0;
out:
    free(tmp);
    return rc;
}

int files_make_parent_dirs(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (slash == NULL || slash == path)
        return 0;
    char *dir = mem_strndup(path, (size_t)(slash - path));
    int rc = files_make_dirs(dir);
    free(dir);
    return rc;
}
