// The per-instruction-set function table behind the entry points of lrunet_kernels.h.
#ifndef LRUNET_TABLE_H
#define LRUNET_TABLE_H
#include "lrunet_kernels.h"

typedef struct {
    int lanes;
    void (*row_affine)(float *, const float *, long, float, float, const float *, int);
    void (*row_relu_grad)(float *, const float *, const float *, long);
    void (*row_add)(float *, const float *, const float *, long);
    void (*relu)(float *, const float *, long);
    void (*relu6)(float *, const float *, long);
    void (*row_relu6_grad)(float *, const float *, const float *, long);
    void (*bn_fold)(float *, float *, const float *, const float *, const float *, const float *, long, float);
    void (*bn_train_row)(const lru_bn_train *, float *, const float *, long, long, const float *, int);
    void (*bn_backward_row)(const lru_bn_grad *, float *, const float *, const float *, long, long);
    void (*bn_replay_row)(const lru_bn_replay *, float *, const float *, long, long);
    void (*bn_row_moments)(const float *, long, double *);
    void (*bn_pooled_statistics)(const lru_bn_train *, const double *, long, double, float *, float *);
    void (*bn_grad_row_sums)(const lru_bn_grad *, const float *, const float *, long, long, double *);
    void (*bn_pooled_backward_row)(const lru_bn_grad *, float *, const float *, const float *, long, long, const double *, double);
    void (*dw3_forward)(const lru_dw3 *, float *, const float *, const float *, const float *, const float *, int);
    void (*dw3_backward)(const lru_dw3 *, float *, float *, const float *, const float *, const float *, const float *);
    void (*dw3_forward_bn)(const lru_dw3 *, float *, float *, const float *, const float *, const lru_bn_train *, long);
    void (*dw3_backward_bn)(const lru_dw3 *, float *, float *, const lru_bn_grad *, const float *, const float *,
                            const float *, const float *, const float *, long);
    void (*tile_depthwise)(float *, const float *, long, long, long, long, const lru_tile *,
                           const lru_iteration_weights *, float *, const float *, const float *);
    void (*tile_pointwise)(float *, const float *, const float *, long, long, long, long, const lru_tile *,
                           const lru_iteration_weights *, int);
    void (*dw3s2_forward)(float *, const float *, long, long, long, const float *, long, const float *, const float *, int, float *);
    void (*gemm_epilogue)(const float *, long, const float *, long, long, long, long, const lru_gemm_epilogue *);
    void (*maxpool3s2_narrow)(float *, const float *, long, long, long, long);
    void (*maxpool3s2_argmax)(float *, int32_t *, const float *, long, long, long, long, float *);
    double (*fma_peak)(long);
} lru_table;

extern const lru_table lru_table_baseline;
#if defined(__x86_64__)
extern const lru_table lru_table_avx2;
extern const lru_table lru_table_avx512;
extern const lru_table lru_table_avx2_w16;
#endif

/// The active table (set on first use, changed by lru_isa_select).
const lru_table *lru_active_table(void);

#endif
