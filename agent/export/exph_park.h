/* exph_park.h: where a replaced exporter's helper leaves the batches its
 * memory queue still holds during a reload, for the helper its replacement
 * makes next with the same id (see ot_exph_replacing in exphelper.h). The
 * old helper shuts down before the new one exists, so the hand-over goes
 * through this list, keyed by exporter id. Only exphelper.c uses it. */
#ifndef OT_EXPH_PARK_H
#define OT_EXPH_PARK_H

#include <stdbool.h>
#include <stddef.h>

#include "model/batch.h"

/* Whether a reload marked exporter id as replaced (ot_exph_replacing). */
bool ot_exph_park_wanted(const char *id);
/* Takes b[] (malloc'd, n batches in queue order, one reference each). */
void ot_exph_park_put(const char *id, ot_batch **b, size_t n);
/* What was parked for id (the caller owns the array and the references),
 * or NULL. */
ot_batch **ot_exph_park_take(const char *id, size_t *n);

#endif
