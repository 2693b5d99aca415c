/* version.c: the build's git revision (see version.h). */
#include "base/version.h"

#include "revision.h"

const char *ot_revision(void)
{
    return OT_REVISION;
}
