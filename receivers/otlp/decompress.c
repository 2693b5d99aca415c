/* decompress.c: request bodies inflated by base/compress.h under the
 * receiver's cap, each growth of the output taken from the receiver's
 * in-flight budget, so a small hostile body that claims (or expands to)
 * gigabytes costs at most the cap and is refused once the budget is spent. */
#include "otlp.h"

static bool take(void *ud, uint64_t n)
{
    return ot_otlpr_budget_take(ud, n);
}

static void give(void *ud, uint64_t n)
{
    ot_otlpr_budget_give(ud, n);
}

int ot_otlpr_decompress(otlpr_enc enc, const uint8_t *in, size_t in_len, size_t cap,
                        otlpr_budget *budget, uint64_t *taken, uint8_t **out, size_t *out_len,
                        ot_err *err)
{
    ot_decomp_budget b = {take, give, budget};
    return ot_decompress((ot_compression)enc, in, in_len, cap, &b, taken, out, out_len, err);
}
