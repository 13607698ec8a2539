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

/// The instruction sets the kernels are compiled for, one entry apiece: the single list from
/// which their codes (LRU_ISA_BASELINE, ...), the tables' declarations (table.h) and the
/// dispatcher's names, lane counts, support checks and table lookup (dispatch.c) are generated.
/// X(ID, suffix, "name", lanes, supported), in code order; `supported` is an expression over
/// dispatch.c's probed `cpu` flags. To add a set: an isa_<suffix>.c file that compiles body.h
/// for it, an entry here, and (for a set users may choose) a case of Swift's InstructionSet.
#define LRU_ISA_LIST(X) \
    X(BASELINE, baseline, "baseline", 4, 1)          /* portable: SSE2 (NEON elsewhere), multiply then add */ \
    X(AVX2, avx2, "avx2", 8, cpu.avx2)               /* AVX2 + FMA */ \
    X(AVX512, avx512, "avx512", 16, cpu.avx512)      /* AVX-512 F/BW/VL/DQ, 32 registers */ \
    X(AVX2_W16, avx2_w16, "avx2-w16", 16, cpu.avx2)  /* the 16-lane code on AVX2: tests the AVX-512 logic anywhere */

#define LRU_ISA_CODE(id, suffix, name, lanes, supported) LRU_ISA_##id,
enum { LRU_ISA_LIST(LRU_ISA_CODE) LRU_ISA_COUNT };
#undef LRU_ISA_CODE

/// Floats every buffer a kernel may read or write a whole vector past must have after its end.
#define LRU_SLACK 16
/// The widest vector any path uses; row strides and tall planes round to it.
#define LRU_MAX_LANES 16

int lru_isa_supported(int isa);          ///< 1 if this CPU (and OS) can run `isa`
int lru_isa_best(void);                  ///< the fastest supported user-selectable set
int lru_isa_select(int isa);             ///< 0, or -1 if `isa` is not supported (nothing changes)
int lru_isa_active(void);
int lru_isa_lanes(int isa);              ///< floats per vector
const char *lru_isa_name(int isa);       ///< "baseline", "avx2", ... (lrunet_isas.def)
/// The CPU's vendor/family/model and relevant features, e.g. "AuthenticAMD family 25 model 1: sse2 avx avx2 fma".
const char *lru_cpu_description(void);
/// Whether the CPU has AVX-512 BF16 (what OpenBLAS's Cooperlake kernels need).
int lru_cpu_has_avx512bf16(void);

// ---------------------------------------------------------------------------------------------
// Row loops and BatchNorm.

/// Activations the epilogues apply.
enum { LRU_ACT_NONE = 0, LRU_ACT_RELU = 1, LRU_ACT_RELU6 = 2 };


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

/// The normalisation from the saved statistics (which the reused block folds into its 1x1).
typedef struct {
    const float *gamma, *beta, *saved_mean, *saved_invstd;
} lru_bn_replay;


// Synchronised BatchNorm (statistics pooled over the processes of a data-parallel run).

// ---------------------------------------------------------------------------------------------
// Depthwise 3x3, stride 1, padding 1, channel multiplier `mult` (the reused block's `dw`).
//
// Planes whose width fills at least 3/4 of its whole vectors roll rows (body_depthwise.h): one
// vector per row at a time, straight from the compact images, each input row loaded once for
// the three output rows it feeds. Narrower ones (for the vector width) are copied a chunk at a
// time into a "tall plane": images stacked with a zero row before each and after the last, rows
// at stride W, so a chunk is one flat vector sweep. Both use two lane masks that blank the taps
// which would wrap to a neighbouring row. 4x4 planes are convolved in registers.

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
    long row;                  ///< floats from one multiplier's output rows to the next (batch * hw unless a worker takes part of the batch)
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


/// Depthwise 3x3 stride 2's polyphase planes (body_depthwise.h): four of (ho + 1) x pitch per
/// image, `images` images per chunk, `buffer` floats per plane (and for the accumulator).
typedef struct {
    long ho, wo, pitch, plane, images, buffer;
} lru_dw3s2;

lru_dw3s2 lru_dw3s2_layout(long h, long w);
/// Floats of one worker's scratch: the four planes and the accumulator.
long lru_dw3s2_scratch_count(long h, long w);

/// The largest plane side lru_dw3_channel_lanes takes (its buffers are per thread and fixed).
#define LRU_LANES_MAX_SIDE 16

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
    int channel_lanes;       ///< batch 1 on small planes: the depthwise takes eight channels in the lanes
    lru_tall tall;
} lru_tile;

/// `parallel_tiles`: how many tiles there should at least be (one per thread), if the batch allows.
lru_tile lru_tile_plan(long planes, long height, long width, long batch, long parallel_tiles, long cache_budget);

/// One application's weights and folded BatchNorms.
typedef struct {
    const float *dw, *pw, *dw_scale, *dw_shift, *pw_scale, *pw_shift;
} lru_iteration_weights;

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



// ---------------------------------------------------------------------------------------------
// Max pooling 3x3, stride 2, padding 1 (LruNet's), NaN propagating, first maximum wins.

/// Any width; `row` holds w + 2 floats.
void lru_maxpool3s2(float *dst, const float *src, long h, long w, long ho, long wo, float *row);
long lru_maxpool_argmax_row_count(long wo);

// ---------------------------------------------------------------------------------------------
// Calibration.


// ---------------------------------------------------------------------------------------------
// The kernels each instruction set implements (documented in lrunet_kernels.def).

#define LRU_KERNEL(name, params, args) void lru_##name params;
#define LRU_KERNEL_RETURNING(type, name, params, args) type lru_##name params;
#include "lrunet_kernels.def"
#undef LRU_KERNEL
#undef LRU_KERNEL_RETURNING

// ---------------------------------------------------------------------------------------------
// System.

/// CPUs in the calling thread's affinity mask (0 if it cannot be read).
int lru_affinity_cpu_count(void);

/// 1 if other work competes for the machine's CPUs (load average or runnable tasks above the
/// CPU count), 0 if not, -1 if unknown.
int lru_cpus_contended(void);

/// Ends OpenBLAS's idle server threads once per process (the engine calls OpenBLAS on one
/// thread); a no-op where the OpenBLAS build has none.
void lru_blas_idle_threads_end(void);

/// The CPU's hint for a spin-wait loop.
static inline void lru_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

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
