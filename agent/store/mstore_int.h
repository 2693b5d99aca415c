/* mstore_int.h: what the two files of the store share and users do not
 * need: decoding an identity from its two byte parts. */
#ifndef OT_MSTORE_INT_H
#define OT_MSTORE_INT_H

#include <stddef.h>
#include <stdint.h>

#include "store/mstore.h"

void ot_mstore_decode_(const uint8_t *base, size_t blen, const uint8_t *pt, size_t plen,
                       ot_mstore_info *out);

/* The point part alone. */
void ot_mstore_decode_attrs_(const uint8_t *pt, size_t plen, ot_mstore_iter *out);

#endif
