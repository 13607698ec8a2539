// Every kernel of one instruction set, and its table. Included once per ISA file.
#include "vec.h"
#include "body_rows.h"
#include "body_depthwise.h"
#include "body_tile.h"
#include "body_pooling.h"
#include "body_peak.h"

const lru_table LRU_CAT(lru_table, LRU_SUFFIX) = {
    .lanes = LRU_VW,
    .row_affine = FN(row_affine),
    .row_relu_grad = FN(row_relu_grad),
    .row_add = FN(row_add),
    .relu = FN(relu),
    .relu6 = FN(relu6),
    .row_relu6_grad = FN(row_relu6_grad),
    .bn_fold = FN(bn_fold),
    .bn_train_row = FN(bn_train_row),
    .bn_backward_row = FN(bn_backward_row),
    .bn_replay_row = FN(bn_replay_row),
    .bn_row_moments = FN(bn_row_moments),
    .bn_pooled_statistics = FN(bn_pooled_statistics),
    .bn_grad_row_sums = FN(bn_grad_row_sums),
    .bn_pooled_backward_row = FN(bn_pooled_backward_row),
    .dw3_forward = FN(dw3_forward),
    .dw3_backward = FN(dw3_backward),
    .dw3_forward_bn = FN(dw3_forward_bn),
    .dw3_backward_bn = FN(dw3_backward_bn),
    .tile_depthwise = FN(tile_depthwise),
    .tile_pointwise = FN(tile_pointwise),
    .dw3s2_forward = FN(dw3s2_forward),
    .gemm_epilogue = FN(gemm_epilogue),
    .maxpool3s2_narrow = FN(maxpool3s2_narrow),
    .maxpool3s2_argmax = FN(maxpool3s2_argmax),
    .fma_peak = FN(fma_peak),
};
