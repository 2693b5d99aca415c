/* version.h: what build this is. The revision lives in one object
 * (version.c), rebuilt when the git revision changes, so the rest of the
 * build does not recompile on every commit. */
#ifndef OT_VERSION_H
#define OT_VERSION_H

#ifndef OT_VERSION
#define OT_VERSION "0.0.0"
#endif

/* `git describe` of the source tree at build time, or "unknown". */
const char *ot_revision(void);

#endif
