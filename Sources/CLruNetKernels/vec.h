// Vector helpers for a kernel body, compiled once per instruction set. Before including,
// the ISA file defines LRU_VW (lanes: 8 or 16), LRU_FMA (1 if fused multiply-add exists)
// and LRU_SUFFIX (the name suffix of this set's functions).
#ifndef LRU_VW
#error "define LRU_VW, LRU_FMA and LRU_SUFFIX before including vec.h"
#endif

// Vector values only pass between functions of one file and one instruction set, all inlined,
// so the ABI of wider-than-native vector arguments never comes into play.
#pragma clang diagnostic ignored "-Wpsabi"

#define LRU_CAT2(a, b) a##_##b
#define LRU_CAT(a, b) LRU_CAT2(a, b)
/// This set's name for a kernel: FN(relu) is lru_relu_avx2 in the AVX2 file.
#define FN(name) LRU_CAT(lru_##name, LRU_SUFFIX)

typedef float vf __attribute__((ext_vector_type(LRU_VW)));
typedef int32_t vi __attribute__((ext_vector_type(LRU_VW)));
/// Eight lanes whatever the set: pooling and the 4x4 planes of the 8-lane paths.
typedef float v8 __attribute__((ext_vector_type(8)));
typedef int32_t v8i __attribute__((ext_vector_type(8)));
typedef float v4 __attribute__((ext_vector_type(4)));

#define VW LRU_VW

static inline __attribute__((always_inline)) vf ld(const float *p) { vf v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline __attribute__((always_inline)) void st(float *p, vf v) { __builtin_memcpy(p, &v, sizeof v); }
static inline __attribute__((always_inline)) vf splat(float x) { return (vf)x; }
static inline __attribute__((always_inline)) v8 ld8(const float *p) { v8 v; __builtin_memcpy(&v, p, sizeof v); return v; }
static inline __attribute__((always_inline)) void st8(float *p, v8 v) { __builtin_memcpy(p, &v, sizeof v); }
static inline __attribute__((always_inline)) v4 ld4(const float *p) { v4 v; __builtin_memcpy(&v, p, sizeof v); return v; }

/// a*b + c: one FMA where the set has it; a multiply and an add otherwise (never a libm call).
#if LRU_FMA
#define MADD(a, b, c) __builtin_elementwise_fma((a), (b), (c))
#else
#define MADD(a, b, c) ((a) * (b) + (c))
#endif

/// max(v, 0) with NaN kept (one maxps with zero first).
static inline __attribute__((always_inline)) vf relu_v(vf v) {
    vi neg = v < (vf)0;
    return (vf)((vi)v & ~neg);
}
/// min(max(v, 0), 6) with NaN kept.
static inline __attribute__((always_inline)) vf relu6_v(vf v) {
    vi big = v > (vf)6;
    v = relu_v(v);
    return (vf)(((vi)v & ~big) | ((vi)(vf)6 & big));
}
/// The epilogue activation `act` (LRU_ACT_*).
static inline __attribute__((always_inline)) vf act_v(vf v, int act) {
    return act == LRU_ACT_RELU ? relu_v(v) : act == LRU_ACT_RELU6 ? relu6_v(v) : v;
}
static inline __attribute__((always_inline)) float act_s(float v, int act) {
    if (act == LRU_ACT_NONE) return v;
    v = v < 0 ? 0 : v;
    return act == LRU_ACT_RELU6 && v > 6 ? 6 : v;
}
static inline __attribute__((always_inline)) v8 relu_v8(v8 v) {
    v8i neg = v < (v8)0;
    return (v8)((v8i)v & ~neg);
}
static inline __attribute__((always_inline)) v8 act_v8(v8 v, int act) {
    if (act == LRU_ACT_NONE) return v;
    v = relu_v8(v);
    if (act != LRU_ACT_RELU6) return v;
    v8i big = v > (v8)6;
    return (v8)(((v8i)v & ~big) | ((v8i)(v8)6 & big));
}

static inline __attribute__((always_inline)) float hsum8(v8 v) {
    v4 a = __builtin_shufflevector(v, v, 0, 1, 2, 3) + __builtin_shufflevector(v, v, 4, 5, 6, 7);
    return (a.x + a.z) + (a.y + a.w);
}
static inline __attribute__((always_inline)) float hsum(vf v) {
#if LRU_VW == 16
    v8 a = __builtin_shufflevector(v, v, 0, 1, 2, 3, 4, 5, 6, 7) + __builtin_shufflevector(v, v, 8, 9, 10, 11, 12, 13, 14, 15);
    return hsum8(a);
#elif LRU_VW == 8
    return hsum8(v);
#else
    return (v.x + v.z) + (v.y + v.w);
#endif
}

/// Hides a pointer's relation to others from the optimiser. The 3x3 sweeps read p[j-1], p[j]
/// and p[j+1]; seeing one base, LLVM rebuilds some of those vectors from overlapping loads with
/// blends and permutes, several instructions for what one unaligned load does.
#define OPAQUE(p) __asm__("" : "+r"(p))
