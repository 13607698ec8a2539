// LruNet's hot kernels, written once in C (clang vector extensions) and compiled for
// several instruction sets in one binary. The first call picks the best set the CPU
// has (or the one LRUNET_ISA names, checked on the Swift side); every entry point
// below then runs that set's code through a table of function pointers.
//
// Layouts are those of the Swift engine: activations channel-major (CNHW), one
// contiguous row of N*H*W values per channel. Buffers a kernel reads past the end
// of (whole vectors) carry LRU_SLACK floats of slack.
#ifndef LRUNET_KERNELS_H
#define LRUNET_KERNELS_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

// ---------------------------------------------------------------------------------------------
// Instruction sets.

enum {
    LRU_ISA_BASELINE = 0,   ///< portable: SSE2 on x86-64 (NEON elsewhere), 4 lanes, multiply then add
    LRU_ISA_AVX2 = 1,       ///< AVX2 + FMA, 8 lanes
    LRU_ISA_AVX512 = 2,     ///< AVX-512 F/BW/VL/DQ, 16 lanes, 32 registers
    LRU_ISA_AVX2_W16 = 3,   ///< the 16-lane code compiled for AVX2: tests the AVX-512 kernels' logic
    LRU_ISA_COUNT = 4
};

/// Floats every buffer a kernel may read or write a whole vector past must have after its end.
#define LRU_SLACK 16
/// The widest vector any path uses; row strides and tall planes round to it.
#define LRU_MAX_LANES 16

int lru_isa_supported(int isa);          ///< 1 if this CPU (and OS) can run `isa`
int lru_isa_best(void);                  ///< the fastest supported user-selectable set
int lru_isa_select(int isa);             ///< 0, or -1 if `isa` is not supported (nothing changes)
int lru_isa_active(void);
int lru_isa_lanes(int isa);              ///< floats per vector
const char *lru_isa_name(int isa);       ///< "baseline", "avx2", "avx512", "avx2-w16"
/// The CPU's vendor/family/model and relevant features, e.g. "AuthenticAMD family 25 model 1: sse2 avx avx2 fma".
const char *lru_cpu_description(void);
/// Whether the CPU has AVX-512 BF16 (what OpenBLAS's Cooperlake kernels need).
int lru_cpu_has_avx512bf16(void);

// ---------------------------------------------------------------------------------------------
// Row loops and BatchNorm.

/// Activations the epilogues apply.
enum { LRU_ACT_NONE = 0, LRU_ACT_RELU = 1, LRU_ACT_RELU6 = 2 };

/// out = act(x*scale + shift (+ residual)), over n values. `out` may be `x`.
void lru_row_affine(float *out, const float *x, long n, float scale, float shift, const float *residual, int act);
/// out = min(max(x, 0), 6), NaN kept (PyTorch's ReLU6).
void lru_relu6(float *out, const float *x, long n);
/// g = 0 < y < 6 ? x : 0 (a gradient through a ReLU6 whose output was y).
void lru_row_relu6_grad(float *g, const float *x, const float *y, long n);
/// g = mask > 0 ? x : 0 (a gradient through a ReLU whose output was `mask`).
void lru_row_relu_grad(float *g, const float *x, const float *mask, long n);
/// out = a + b; `out` may be `a`.
void lru_row_add(float *out, const float *a, const float *b, long n);
/// out = max(x, 0), NaN stays NaN (PyTorch's ReLU).
void lru_relu(float *out, const float *x, long n);
/// scale = gamma / sqrt(var + eps), shift = beta - mean * scale.
void lru_bn_fold(float *scale, float *shift, const float *gamma, const float *beta, const float *mean,
                 const float *variance, long channels, float eps);

/// Training BatchNorm of one channel (PyTorch's: batch mean and biased variance to normalise,
/// running statistics updated with the unbiased one).
typedef struct {
    const float *gamma, *beta;
    float *saved_mean, *saved_invstd, *running_mean, *running_var;
    float momentum, eps;
} lru_bn_train;

/// Its backward: gradients of gamma and beta accumulate.
typedef struct {
    const float *gamma, *saved_mean, *saved_invstd;
    float *grad_gamma, *grad_beta;
} lru_bn_grad;

/// The normalisation applied again from the saved statistics (same bits as the forward).
typedef struct {
    const float *gamma, *beta, *saved_mean, *saved_invstd;
} lru_bn_replay;

/// Normalises channel c's row x (n values) into out, optionally + residual and an activation.
void lru_bn_train_row(const lru_bn_train *bn, float *out, const float *x, long n, long c, const float *residual, int act);
/// dx from dy and the row x the forward normalised; `dx` may be `x`.
void lru_bn_backward_row(const lru_bn_grad *bn, float *dx, const float *dy, const float *x, long n, long c);
void lru_bn_replay_row(const lru_bn_replay *bn, float *out, const float *x, long n, long c);

// Synchronised BatchNorm (statistics pooled over the processes of a data-parallel run).
/// Channel row x's contribution to the pooled moments: sums[0] = sum(x), sums[1] = sum(x^2)
/// (as M2 + n*mean^2 from its own two-pass mean).
void lru_bn_row_moments(const float *x, long n, double *sums);
/// From pooled moments ([channels][2], over `count` values a channel): saves mean and invstd,
/// updates the running statistics, and writes the normalisation as scale and shift per channel.
void lru_bn_pooled_statistics(const lru_bn_train *bn, const double *sums, long channels, double count,
                              float *scale, float *shift);
/// Backward's contribution of channel c's row: sums[0] = sum(dy), sums[1] = sum(dy*(x-mean));
/// gamma's and beta's gradients accumulate this row's share.
void lru_bn_grad_row_sums(const lru_bn_grad *bn, const float *dy, const float *x, long n, long c, double *sums);
/// dx of channel c's row from the pooled sums ([channels][2]) over `count` values. dx may be dy or x.
void lru_bn_pooled_backward_row(const lru_bn_grad *bn, float *dx, const float *dy, const float *x, long n, long c,
                                const double *sums, double count);

// ---------------------------------------------------------------------------------------------
// Depthwise 3x3, stride 1, padding 1, channel multiplier `mult` (the reused block's `dw`).
//
// A chunk of one channel's images is copied into a "tall plane": images stacked with a zero row
// before each and after the last, rows at stride W, so a chunk is one flat vector sweep; two lane
// masks blank the taps that would wrap to a neighbouring row. 4x4 planes are convolved in
// registers instead, straight from the rows.

typedef struct {
    long height, width;
    long images;          ///< images per chunk
    long rows_per_image;  ///< height + 1 (the separator row)
    long flat;            ///< outputs swept for a full chunk, rounded to LRU_MAX_LANES
    long buffer_count;    ///< floats of one tall buffer (guard, rows, slack)
} lru_tall;

/// Where row 0 of a tall plane starts in its buffer.
#define LRU_TALL_ORIGIN 16

lru_tall lru_tall_layout(long height, long width, long batch, long chunk_values);
/// Writes the lane masks: left[j] = (x != 0), right[j] = (x != W-1), x = j mod W, j < t->flat.
void lru_tall_masks(const lru_tall *t, float *left, float *right);
int lru_tall_square4(const lru_tall *t);

/// One worker's view of the depthwise scratch.
typedef struct {
    lru_tall tall;
    long mult, batch, hw;
    const float *left, *right;
    float *pin, *pout, *acc;   ///< input plane, output-gradient plane (both at their origin), accumulator
    float *rows;               ///< this worker's rows for the fused BatchNorm kernels
} lru_dw3;

/// Scratch floats: two masks, three tall buffers per worker, `rows_per_worker` more per worker.
long lru_dw3_scratch_count(long height, long width, long batch, long threads, long rows_per_worker);
/// Writes the masks into the scratch; call once before the workers start.
void lru_dw3_prepare(float *scratch, long height, long width, long batch);
/// Worker `worker`'s view (its tall buffers are zeroed here).
lru_dw3 lru_dw3_worker(float *scratch, long height, long width, long batch, long mult, long threads, long worker);

/// One input channel: dst[m] = act(conv(input, weight[m]) * scale[m] + shift[m]) for m < mult
/// (scale/shift may be null). Output m's row (the whole batch) at dst + m*batch*hw.
void lru_dw3_forward(const lru_dw3 *k, float *dst, const float *input, const float *weight,
                     const float *scale, const float *shift, int act);
/// One input channel's gradients: grad_weight[m] accumulates; grad_input (may be null) is
/// overwritten, plus add_to when given.
void lru_dw3_backward(const lru_dw3 *k, float *grad_input, float *grad_weight, const float *grad_output,
                      const float *input, const float *weight, const float *add_to);
/// Training's depthwise + BatchNorm for one input channel: raw rows kept in `raw`, normalised
/// ones in `out`; BatchNorm channels first_output ..< first_output + mult.
void lru_dw3_forward_bn(const lru_dw3 *k, float *out, float *raw, const float *input, const float *weight,
                        const lru_bn_train *bn, long first_output);
/// Its backward, from the gradient at the normalised rows and the raw rows.
void lru_dw3_backward_bn(const lru_dw3 *k, float *grad_input, float *grad_weight, const lru_bn_grad *bn,
                         const float *grad_output, const float *raw, const float *input, const float *weight,
                         const float *add_to, long first_output);

/// Depthwise 3x3, stride 2, padding 1 of one input channel over the batch: output m's rows
/// ([batch][ho][wo] each) at dst + m*batch*ho*wo, = act(conv * scale[m] + shift[m]) (scale and
/// shift may be null). `scratch` holds lru_dw3s2_scratch_count(h, w) floats (per thread).
void lru_dw3s2_forward(float *dst, const float *src, long batch, long h, long w, const float *weight, long mult,
                       const float *scale, const float *shift, int act, float *scratch);
long lru_dw3s2_scratch_count(long h, long w);

// ---------------------------------------------------------------------------------------------
// The reused block's inference, a tile of images at a time (see ReuseTile.swift).

typedef struct {
    long planes, height, width, images;
    long plane;              ///< height * width
    long group_in;           ///< planes / 8: a pointwise group's input (and output) channels
    long ld;                 ///< row stride of tile buffers, whole LRU_MAX_LANES vectors
    long activation_count;   ///< one activation buffer (planes rows + slack)
    long depthwise_count;    ///< one group's depthwise rows (2 per input channel + slack)
    long participant_count;  ///< floats a participant needs: 2 activation buffers, depthwise rows, a tall plane
    lru_tall tall;
} lru_tile;

/// `parallel_tiles`: how many tiles there should at least be (one per thread), if the batch allows.
lru_tile lru_tile_plan(long planes, long height, long width, long batch, long parallel_tiles, long cache_budget);

/// One application's weights and folded BatchNorms.
typedef struct {
    const float *dw, *pw, *dw_scale, *dw_shift, *pw_scale, *pw_shift;
} lru_iteration_weights;

/// Depthwise (+ BN) of input channels [c_begin, c_end) of a tile of `images` images into
/// `dw_rows`: output 2c+m at dw_rows + (2*(c - c_base) + m) * ld.
void lru_tile_depthwise(float *dw_rows, const float *res, long c_base, long c_begin, long c_end, long images,
                        const lru_tile *t, const lru_iteration_weights *k, float *tall_buffer,
                        const float *mask_left, const float *mask_right);
/// The 1x1 of pointwise group g for its output rows [r_begin, r_end) (multiples of 4 from the
/// group's first row), from the group's depthwise rows, with BN + residual + ReLU on the way out,
/// written at the channel's shuffled place when `shuffle`.
void lru_tile_pointwise(float *next, const float *res, const float *dw_rows, long group, long r_begin, long r_end,
                        long images, const lru_tile *t, const lru_iteration_weights *k, int shuffle);
/// Both for the whole group g.
void lru_tile_group(float *next, const float *res, long group, long images, const lru_tile *t,
                    const lru_iteration_weights *k, int shuffle, float *dw_rows, float *tall_buffer,
                    const float *mask_left, const float *mask_right);

// ---------------------------------------------------------------------------------------------
// 1x1 convolution as a register-blocked GEMM with a fused epilogue (inference).

/// out[dest[r]][col] = act(acc * scale[r] + shift[r] (+ res[r][col])); without scale,
/// act(acc (+ res)); without dest, row r goes to row r (dest: a channel shuffle folded in).
typedef struct {
    float *out;
    long ldo;
    const float *res;
    long ldr;
    const float *scale, *shift;
    const int32_t *dest;
    int act;
} lru_gemm_epilogue;

/// acc = W x B for rows [0, rows) of W (row r at w + r*k) and columns [c0, c1) of B (k rows at
/// stride ldb), any sizes, then the epilogue.
void lru_gemm_epilogue_run(const float *w, long k, const float *b, long ldb, long rows, long c0, long c1,
                           const lru_gemm_epilogue *e);

/// Max pooling 3x3 / 2 / pad 1 of one plane (`w` <= 16) without argmax.
void lru_maxpool3s2_narrow(float *dst, const float *src, long h, long w, long ho, long wo);

// ---------------------------------------------------------------------------------------------
// Max pooling 3x3, stride 2, padding 1 (LruNet's), NaN propagating, first maximum wins.

/// Any width; `row` holds w + 2 floats.
void lru_maxpool3s2(float *dst, const float *src, long h, long w, long ho, long wo, float *row);
/// With the argmax (index within the plane); `rows` holds 3 * lru_maxpool_argmax_row_count(wo) + 8 floats.
void lru_maxpool3s2_argmax(float *dst, int32_t *idx, const float *src, long h, long w, long ho, long wo, float *rows);
long lru_maxpool_argmax_row_count(long wo);

// ---------------------------------------------------------------------------------------------
// Calibration.

/// Runs `iterations` steps of independent multiply-add chains (FMA where the set has it) on
/// the calling thread; returns the floating-point operations done. Time it to get the peak.
double lru_fma_peak(long iterations);

// ---------------------------------------------------------------------------------------------
// System.

/// CPUs in the calling thread's affinity mask (0 if it cannot be read).
int lru_affinity_cpu_count(void);

/// Sets flush-to-zero and denormals-are-zero on the calling thread (x86 MXCSR; nothing
/// elsewhere) and returns the mode to restore with lru_fpu_restore.
unsigned lru_fpu_flush_denormals(void);
void lru_fpu_restore(unsigned mode);
/// Whether the calling thread flushes denormals (both FTZ and DAZ set).
int lru_fpu_flushes(void);

#ifdef __cplusplus
}
#endif
#endif
