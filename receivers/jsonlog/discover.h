/* discover.h: finding the files the globs name (discover.c). */
#ifndef JL_DISCOVER_H
#define JL_DISCOVER_H

#include <stdbool.h>
#include <sys/stat.h>

#include "config/config.h"

/* pattern and path are absolute; `*`, `?`, `[...]` match inside one path
 * segment, `**` any number of segments (zero included). */
bool jl_glob_match(const char *pattern, const char *path);

/* Called once per regular file (symlinks followed) that matches an include
 * pattern and no exclude pattern; st is stat(2) of it. */
typedef void (*jl_found_fn)(void *ud, const char *path, const struct stat *st);
void jl_discover(const ot_strlist *include, const ot_strlist *exclude, jl_found_fn fn, void *ud);

#endif
