// Every kernel of one instruction set, and its table. Included once per ISA file.
#include "vec.h"
#include "body_rows.h"
#include "body_depthwise.h"
#include "body_tile.h"
#include "body_lanes_block.h"
#include "body_gradient_gemm.h"
#include "body_pooling.h"
#include "body_peak.h"

const lru_table LRU_CAT(lru_table, LRU_SUFFIX) = {
    .lanes = LRU_VW,
#define LRU_KERNEL(name, params, args) .name = FN(name),
#define LRU_KERNEL_RETURNING(type, name, params, args) .name = FN(name),
#include "lrunet_kernels.def"
#undef LRU_KERNEL
#undef LRU_KERNEL_RETURNING
};
