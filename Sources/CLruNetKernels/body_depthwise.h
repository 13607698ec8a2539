// Depthwise 3x3 (stride 1, padding 1) kernels: rolling rows where the width fills the vectors,
// the tall-plane sweep for other planes, 4x4 planes in registers, and training's fused
// depthwise + BatchNorm.

/// `count` floats, inline: planes here are 16 to 196 floats, where a call to memcpy costs as
/// much as the copy.
static inline __attribute__((always_inline)) void FN(copy_floats)(float *dst, const float *src, long count) {
    long i = 0;
    for (; i + VW <= count; i += VW) st(dst + i, ld(src + i));
    for (; i < count; i++) dst[i] = src[i];
}

/// Copies images n0 ..< n0+n of a channel row into the tall plane; separators stay zero.
static inline void FN(tall_fill)(const lru_tall *t, float *tall, const float *row, long n0, long n) {
    long hw = t->height * t->width;
    for (long i = 0; i < n; i++) FN(copy_floats)(tall + (i * t->rows_per_image + 1) * t->width, row + (n0 + i) * hw, hw);
}

/// Zeroes what a full chunk would have past image n, up to where a sweep of flat(n) outputs
/// reads: the weight gradient sums over every lane, so a short last chunk must not see the
/// previous chunk's images there.
static inline void FN(tall_clear_past)(const lru_tall *t, float *tall, long n) {
    long from = (n * t->rows_per_image + 1) * t->width, to = lru_tall_flat_n(t, n) + 3 * t->width + LRU_MAX_LANES;
    for (long i = from; i < to; i++) tall[i] = 0;
}

/// acc[j] (+)= left[j]*sum_r a_r*p[j + rW - 1] + sum_r b_r*p[j + rW] + right[j]*sum_r c_r*p[j + rW + 1]
/// for rows r = 0, 1, 2; k holds (a0, b0, c0, a1, b1, c1, a2, b2, c2), mirrored when `reversed`.
static inline __attribute__((always_inline)) void FN(sweep3x3)(float *acc, const float *p, long w, long flat,
                                                                 const float *left, const float *right, const float *k,
                                                                 int reversed, int accumulate) {
#define TAP(t) splat(k[reversed ? 8 - (t) : (t)])
    vf a0 = TAP(0), b0 = TAP(1), c0 = TAP(2), a1 = TAP(3), b1 = TAP(4), c1 = TAP(5), a2 = TAP(6), b2 = TAP(7), c2 = TAP(8);
#undef TAP
    const float *pl = p - 1, *pm = p, *pr = p + 1;
    OPAQUE(pl); OPAQUE(pm); OPAQUE(pr);
    for (long j = 0; j < flat; j += VW) {
        vf l = a0 * ld(pl + j), m = b0 * ld(pm + j), r = c0 * ld(pr + j);
        l = MADD(a1, ld(pl + j + w), l); m = MADD(b1, ld(pm + j + w), m); r = MADD(c1, ld(pr + j + w), r);
        l = MADD(a2, ld(pl + j + 2 * w), l); m = MADD(b2, ld(pm + j + 2 * w), m); r = MADD(c2, ld(pr + j + 2 * w), r);
        if (accumulate) m += ld(acc + j);
        vf v = MADD(ld(left + j), l, m);
        st(acc + j, MADD(ld(right + j), r, v));
    }
}

// ---------------------------------------------------------------------------------------------
// Rolling rows: straight from compact images, no tall plane.
//
// A strip is one vector at column s of every row (s = 0, VW, ...; the last strip runs past the
// row into the next). Walking down a strip, each input row's three views (x-1, x, x+1) are
// loaded once and feed three outputs: the row above (bottom taps, then it is stored), this row
// (middle taps) and the row below (top taps, seeded with the shift): 3 loads and 9 multiply-adds
// per output vector, against the sweep's 9 loads, 2 masks and a copy into the plane. The lane
// masks are folded into the left and right taps, and they are the same for every row of a strip.

/// Whether rolling rows beat the tall sweep for width w: a strip's lanes are at least 3/4 useful.
#define DW3_ROLLS(w) (4 * (w) >= 3 * (((w) + VW - 1) / VW * VW))
/// Images whose strips are all done before the next images: a chunk stays in L1 while each of
/// its strips passes over it.
#define DW3_ROLL_CHUNK(hw) ((hw) >= 2048 ? 1 : 2048 / (hw))

#define DW3_ROLL_TAPS(k, scale, mL, mR) \
    vf L0 = splat((scale) * (k)[0]) * (mL), M0 = splat((scale) * (k)[1]), R0 = splat((scale) * (k)[2]) * (mR); \
    vf L1 = splat((scale) * (k)[3]) * (mL), M1 = splat((scale) * (k)[4]), R1 = splat((scale) * (k)[5]) * (mR); \
    vf L2 = splat((scale) * (k)[6]) * (mL), M2 = splat((scale) * (k)[7]), R2 = splat((scale) * (k)[8]) * (mR);
/// Tap row r of the kernel on the loaded views, added to `seed`.
#define DW3_ROLL_ROW(r, seed) MADD(R##r, vr, MADD(L##r, vl, MADD(M##r, vm, (seed))))

/// v's lanes one up (lane t gets lane t-1), zero into lane 0: the left view of a row's first
/// vector without reading the float before it.
static inline __attribute__((always_inline)) vf FN(from_left_zero)(vf v) {
#if LRU_VW == 16
    return __builtin_shufflevector((vf)0, v, 0, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30);
#elif LRU_VW == 8
    return __builtin_shufflevector((vf)0, v, 0, 8, 9, 10, 11, 12, 13, 14);
#else
    return __builtin_shufflevector((vf)0, v, 0, 4, 5, 6);
#endif
}

/// The first `count` lanes of v to p.
static inline __attribute__((always_inline)) void FN(st_first)(float *p, vf v, long count) {
    float lane[VW];
    st(lane, v);
    for (long j = 0; j < count; j++) p[j] = lane[j];
}

/// dst = act(depthwise 3x3 (stride 1, padding 1) of n compact H x W images * scale + shift), both
/// with image i at i*H*W. Writes nothing past the last image; reads up to a vector past it (not
/// before it), whatever that holds: the lanes that meet a zero tap there (the last row's right
/// view) are cleared first, since zero times infinity is NaN. Strips run last to first and images
/// in order, so the lanes a strip writes past its row (wrong there: they missed the row above at
/// the top of an image) are rewritten by a later store. `left` and `right` are the tall plane's
/// lane masks (only their first W + VW lanes are read).
static inline void FN(dw3_roll)(float *dst, const float *src, long n, long h, long w, const float *left,
                                const float *right, const float *k, float scale, float shift, int act) {
    long hw = h * w, chunk = DW3_ROLL_CHUNK(hw);
    vf sh = splat(shift);
    for (long i0 = 0; i0 < n; i0 += chunk)
    for (long s = ((w - 1) / VW) * VW; s >= 0; s -= VW) {
        vf mL = ld(left + s), mR = ld(right + s);
        vi in_r = mR != 0;      // lanes whose right neighbour is in the row
        DW3_ROLL_TAPS(k, scale, mL, mR)
        for (long i = i0; i < n && i < i0 + chunk; i++) {
            const float *p = src + i * hw + s;
            float *d = dst + i * hw + s;
            // The last store of the last image stops at the image's end when the strip runs past the row.
            long tail = i == n - 1 && s + VW > w ? w - s : VW;
            OPAQUE(p);
            vf vm = ld(p), vl = s ? ld(p - 1) : FN(from_left_zero)(vm), vr = ld(p + 1);
            if (h == 1) {
                vr = (vf)((vi)vr & in_r);
                FN(st_first)(d, act_v(DW3_ROLL_ROW(1, sh), act), tail);
                continue;
            }
            vf cur = DW3_ROLL_ROW(1, sh), next = DW3_ROLL_ROW(0, sh);
            long y = 1;
            for (; y < h - 1; y++) {       // row y: finishes row y-1, adds to row y, starts row y+1
                const float *q = p + y * w;
                vl = ld(q - 1); vm = ld(q); vr = ld(q + 1);
                st(d + (y - 1) * w, act_v(DW3_ROLL_ROW(2, cur), act));
                cur = DW3_ROLL_ROW(1, next);
                next = DW3_ROLL_ROW(0, sh);
            }
            const float *q = p + y * w;
            vl = ld(q - 1); vm = ld(q); vr = (vf)((vi)ld(q + 1) & in_r);
            st(d + (y - 1) * w, act_v(DW3_ROLL_ROW(2, cur), act));
            FN(st_first)(d + y * w, act_v(DW3_ROLL_ROW(1, next), act), tail);
        }
    }
}
/// The gradients of dw3_roll for one input channel and its `MULT` outputs (G_m at g + m*row):
///   dIn = sum_m the rolling conv of G_m with w_m mirrored (+ add_to), written as dw3_roll writes;
///   dW_m[ky][kx] += sum G_m(y, x) * In(y + ky - 1, x + kx - 1), walking down each strip with the
///   input row's three views and the gradient rows below, at and above it (zero outside the image).
/// Lanes past a row are cleared before they meet the input (bitwise, so junk there cannot make a
/// NaN) in the weight gradient, which sums every lane.
static inline __attribute__((always_inline)) void FN(dw3_roll_backward)(const int MULT, float *grad_input, float *grad_weight,
        const float *g, long row, const float *input, long n, long h, long w, const float *left, const float *right,
        const float *weight, const float *add_to) {
    long hw = h * w, chunk = DW3_ROLL_CHUNK(hw);
    vf dw[2][9];
    for (int m = 0; m < MULT; m++)
        for (int t = 0; t < 9; t++) dw[m][t] = 0;
    for (long i0 = 0; i0 < n; i0 += chunk)
    for (long s = ((w - 1) / VW) * VW; s >= 0; s -= VW) {
        long i1 = n - i0 < chunk ? n : i0 + chunk;
        vf mL = ld(left + s), mR = ld(right + s);
        vi in_l = mL != 0, in_r = mR != 0;
        vi lane = {0};
        for (int t = 0; t < VW; t++) lane[t] = t;
        vi valid = lane < (vi)(int)(w - s);
        // Input gradient: the forward roll with mirrored taps, summed over the outputs.
        if (grad_input) {
            vf L[2][3], M[2][3], R[2][3];
            for (int m = 0; m < MULT; m++)
                for (int r = 0; r < 3; r++) {
                    const float *k = weight + 9 * m + 3 * (2 - r);
                    L[m][r] = splat(k[2]) * mL; M[m][r] = splat(k[1]); R[m][r] = splat(k[0]) * mR;
                }
#define GROW(m, r, seed) MADD(R[m][r], vr, MADD(L[m][r], vl, MADD(M[m][r], vm, (seed))))
            for (long i = i0; i < i1; i++) {
                float *d = grad_input + i * hw + s;
                const float *a = add_to ? add_to + i * hw + s : 0;
                long tail = i == n - 1 && s + VW > w ? w - s : VW;
                vf prev = 0, cur = 0;
                for (long y = 0; y < h; y++) {
                    vf np = 0;
                    for (int m = 0; m < MULT; m++) {
                        const float *q = g + m * row + i * hw + s + y * w;
                        OPAQUE(q);
                        vf vm = ld(q), vl = s || y ? ld(q - 1) : FN(from_left_zero)(vm), vr = ld(q + 1);
                        if (y == h - 1) vr = (vf)((vi)vr & in_r);
                        prev = GROW(m, 2, prev);
                        cur = GROW(m, 1, cur);
                        np = GROW(m, 0, np);
                    }
                    if (y > 0) {
                        vf v = a ? prev + ld(a + (y - 1) * w) : prev;
                        st(d + (y - 1) * w, v);
                    }
                    prev = cur; cur = np;
                }
                vf v = a ? prev + ld(a + (h - 1) * w) : prev;
                FN(st_first)(d + (h - 1) * w, v, tail);
            }
#undef GROW
        }
        // Weight gradient. Nine accumulators, three gradient rows and three views fill the 16
        // registers of AVX2: the masks are reloaded from memory (opaque, so they are not hoisted
        // into registers and an accumulator spilled instead).
        vi masks[3] = {in_l & valid, valid, in_r & valid};
        for (int m = 0; m < MULT; m++) {
            vf a0 = dw[m][0], a1 = dw[m][1], a2 = dw[m][2], a3 = dw[m][3], a4 = dw[m][4], a5 = dw[m][5],
               a6 = dw[m][6], a7 = dw[m][7], a8 = dw[m][8];
            for (long i = i0; i < i1; i++) {
                const float *gp = g + m * row + i * hw + s, *p = input + i * hw + s;
                OPAQUE(gp); OPAQUE(p);
                vf g_prev = 0, g_cur = (vf)((vi)ld(gp) & valid), g_next;
#define DW3_GRAD_ROW(y) { \
                    const float *q = p + (y) * w; \
                    const vi *mk = masks; \
                    OPAQUE(mk); \
                    vf vm = ld(q), vl = s || (y) ? ld(q - 1) : FN(from_left_zero)(vm), vr = ld(q + 1); \
                    vl = (vf)((vi)vl & mk[0]); vm = (vf)((vi)vm & mk[1]); vr = (vf)((vi)vr & mk[2]); \
                    a0 = MADD(g_next, vl, a0); a1 = MADD(g_next, vm, a1); a2 = MADD(g_next, vr, a2); \
                    a3 = MADD(g_cur, vl, a3); a4 = MADD(g_cur, vm, a4); a5 = MADD(g_cur, vr, a5); \
                    a6 = MADD(g_prev, vl, a6); a7 = MADD(g_prev, vm, a7); a8 = MADD(g_prev, vr, a8); \
                    g_prev = g_cur; g_cur = g_next; }
                long y = 0;
                for (; y < h - 1; y++) {
                    const vi *mk = masks;
                    OPAQUE(mk);
                    g_next = (vf)((vi)ld(gp + (y + 1) * w) & mk[1]);
                    DW3_GRAD_ROW(y)
                }
                g_next = 0;
                DW3_GRAD_ROW(y)
#undef DW3_GRAD_ROW
            }
            dw[m][0] = a0; dw[m][1] = a1; dw[m][2] = a2; dw[m][3] = a3; dw[m][4] = a4; dw[m][5] = a5;
            dw[m][6] = a6; dw[m][7] = a7; dw[m][8] = a8;
        }
    }
    for (int m = 0; m < MULT; m++)
        for (int t = 0; t < 9; t++) grad_weight[9 * m + t] += hsum(dw[m][t]);
}

#undef DW3_ROLL_TAPS
#undef DW3_ROLL_ROW

// ---------------------------------------------------------------------------------------------
// 4x4 planes in registers.
//
// 8 lanes: a plane is two vectors, rows (0, 1) and rows (2, 3), one row per 128-bit lane. Each
// tap's view is a load at another row offset (or one row loaded into both lanes), and for the
// left and right columns a permute inside each lane. 16 lanes: a plane is one vector, and the
// row shifts are permutes too. The views never read outside the image; the junk they shift in
// at an edge meets taps that are zero in that lane (edge-masked tap vectors, made once per
// channel). Literal zeros shifted into the views instead made LLVM split the FMAs into narrower
// pieces; masked taps keep every lane of every vector op alike.

#if LRU_VW == 8
static inline __attribute__((always_inline)) v8 from_left4(v8 v) { return __builtin_shufflevector(v, v, 0, 0, 1, 2, 4, 4, 5, 6); }
static inline __attribute__((always_inline)) v8 from_right4(v8 v) { return __builtin_shufflevector(v, v, 1, 2, 3, 3, 5, 6, 7, 7); }

typedef struct { v8 left, centre, right; } FN(taprow);
static inline __attribute__((always_inline)) FN(taprow) FN(taprow_make)(float w0, float w1, float w2, v8 rows) {
    const v8 not_left = {0, 1, 1, 1, 0, 1, 1, 1}, not_right = {1, 1, 1, 0, 1, 1, 1, 0};
    FN(taprow) r = {(v8)w0 * (rows * not_left), (v8)w1 * rows, (v8)w2 * (rows * not_right)};
    return r;
}

/// The nine taps of one output channel for both vectors of a plane, scaled and edge-masked.
/// Output rows (0, 1) have no row above row 0; rows (2, 3) none below row 3.
typedef struct { FN(taprow) top01, top23, middle, bottom01, bottom23; } FN(taps);
static inline __attribute__((always_inline)) FN(taps) FN(taps_make)(const float *w, float scale, int reversed) {
#define TAP(t) (scale * w[reversed ? 8 - (t) : (t)])
    const v8 all = 1, low = {1, 1, 1, 1, 0, 0, 0, 0}, high = all - low;
    FN(taps) t;
    t.top01 = FN(taprow_make)(TAP(0), TAP(1), TAP(2), high);
    t.top23 = FN(taprow_make)(TAP(0), TAP(1), TAP(2), all);
    t.middle = FN(taprow_make)(TAP(3), TAP(4), TAP(5), all);
    t.bottom01 = FN(taprow_make)(TAP(6), TAP(7), TAP(8), all);
    t.bottom23 = FN(taprow_make)(TAP(6), TAP(7), TAP(8), low);
#undef TAP
    return t;
}

/// One image's row views: rows (r-1, r, r+1) for output rows (0, 1) are (above, r01, inner),
/// for rows (2, 3) (inner, r23, below).
typedef struct { v8 above, r01, inner, r23, below; } FN(plane);
static inline __attribute__((always_inline)) FN(plane) FN(plane_load)(const float *p) {
    v4 row0 = ld4(p), row3 = ld4(p + 12);
    FN(plane) q;
    q.above = __builtin_shufflevector(row0, row0, 0, 1, 2, 3, 0, 1, 2, 3);   // low lane junk (masked)
    q.r01 = ld8(p); q.inner = ld8(p + 4); q.r23 = ld8(p + 8);
    q.below = __builtin_shufflevector(row3, row3, 0, 1, 2, 3, 0, 1, 2, 3);   // high lane junk (masked)
    return q;
}

static inline __attribute__((always_inline)) v8 column3(v8 t0, v8 v0, v8 t1, v8 v1, v8 t2, v8 v2) {
    return MADD(t2, v2, MADD(t1, v1, t0 * v0));
}

/// 3x3 conv (padding 1) of one plane plus a seed per output vector. The three columns sum
/// separately: one chain of nine FMAs per output would wait on FMA latency.
static inline __attribute__((always_inline)) void FN(conv4x4)(FN(plane) p, const FN(taps) *t, v8 seed0, v8 seed1,
                                                                v8 *out0, v8 *out1) {
    v8 aL = from_left4(p.above), r01L = from_left4(p.r01), inL = from_left4(p.inner), r23L = from_left4(p.r23), beL = from_left4(p.below);
    v8 aR = from_right4(p.above), r01R = from_right4(p.r01), inR = from_right4(p.inner), r23R = from_right4(p.r23), beR = from_right4(p.below);
    v8 c0 = column3(t->top01.centre, p.above, t->middle.centre, p.r01, t->bottom01.centre, p.inner);
    v8 l0 = column3(t->top01.left, aL, t->middle.left, r01L, t->bottom01.left, inL);
    v8 q0 = column3(t->top01.right, aR, t->middle.right, r01R, t->bottom01.right, inR);
    v8 c1 = column3(t->top23.centre, p.inner, t->middle.centre, p.r23, t->bottom23.centre, p.below);
    v8 l1 = column3(t->top23.left, inL, t->middle.left, r23L, t->bottom23.left, beL);
    v8 q1 = column3(t->top23.right, inR, t->middle.right, r23R, t->bottom23.right, beR);
    *out0 = seed0 + c0 + (l0 + q0);
    *out1 = seed1 + c1 + (l1 + q1);
}

/// Adds one row view's three taps (centre, left, right) to an output vector's chain.
static inline __attribute__((always_inline)) v8 taprow_add(FN(taprow) r, v8 centre, v8 left, v8 right, v8 acc) {
    return MADD(r.right, right, MADD(r.left, left, MADD(r.centre, centre, acc)));
}

/// One image's two output vectors for the taps of `count` outputs (1 or 2), each a chain of
/// nine multiply-adds seeded with the shift, in the same order whatever else runs beside it (so
/// an image's result does not depend on how many images or outputs share the loop). The five
/// row views and their column shifts are made once and serve every output; a row's views are
/// dead once its taps are added, which keeps the working set small.
static inline __attribute__((always_inline)) void FN(conv4x4_outputs)(const float *src, const FN(taps) *t, const v8 *seed,
                                                                        int count, v8 out[2][2]) {
    FN(plane) p = FN(plane_load)(src);
    v8 l = from_left4(p.above), r = from_right4(p.above);
#pragma unroll
    for (int m = 0; m < count; m++) out[m][0] = taprow_add(t[m].top01, p.above, l, r, seed[m]);
    l = from_left4(p.r01), r = from_right4(p.r01);
#pragma unroll
    for (int m = 0; m < count; m++) out[m][0] = taprow_add(t[m].middle, p.r01, l, r, out[m][0]);
    l = from_left4(p.inner), r = from_right4(p.inner);
#pragma unroll
    for (int m = 0; m < count; m++) {
        out[m][0] = taprow_add(t[m].bottom01, p.inner, l, r, out[m][0]);
        out[m][1] = taprow_add(t[m].top23, p.inner, l, r, seed[m]);
    }
    l = from_left4(p.r23), r = from_right4(p.r23);
#pragma unroll
    for (int m = 0; m < count; m++) out[m][1] = taprow_add(t[m].middle, p.r23, l, r, out[m][1]);
    l = from_left4(p.below), r = from_right4(p.below);
#pragma unroll
    for (int m = 0; m < count; m++) out[m][1] = taprow_add(t[m].bottom23, p.below, l, r, out[m][1]);
}

/// COUNT (1 or 2, a constant once inlined) outputs from m0 over n images, STEP images at a time.
static inline __attribute__((always_inline)) void FN(dw4x4_run)(const int COUNT, const int STEP, float *const *dst_m, long m0,
                                                                  const float *src, long n, const FN(taps) *t, const v8 *seed,
                                                                  int act) {
    long i = 0;
    for (; i + STEP <= n; i += STEP) {
        v8 o[4][2][2];
#pragma unroll
        for (int j = 0; j < STEP; j++) FN(conv4x4_outputs)(src + 16 * (i + j), t, seed, COUNT, o[j]);
#pragma unroll
        for (int j = 0; j < STEP; j++)
#pragma unroll
            for (int m = 0; m < COUNT; m++) {
                st8(dst_m[m0 + m] + 16 * (i + j), act_v8(o[j][m][0], act));
                st8(dst_m[m0 + m] + 16 * (i + j) + 8, act_v8(o[j][m][1], act));
            }
    }
    for (; i < n; i++) {
        v8 o[2][2];
        FN(conv4x4_outputs)(src + 16 * i, t, seed, COUNT, o);
#pragma unroll
        for (int m = 0; m < COUNT; m++) {
            st8(dst_m[m0 + m] + 16 * i, act_v8(o[m][0], act)); st8(dst_m[m0 + m] + 16 * i + 8, act_v8(o[m][1], act));
        }
    }
}

/// dst = conv of n consecutive 4x4 images at src with `mult` output channels' taps (scaled),
/// plus their shifts; output m's images at dst_m[m]. Outputs go two at a time, sharing each
/// image's column shifts (permutes); images go two (four for a lone output) at a time, so that
/// eight multiply-add chains hide the FMA latency. The taps not in registers are FMA operands.
static inline void FN(dw4x4_images)(float *const *dst_m, const float *src, long n, const float *weight, long mult,
                                    const float *scale, const float *shift, int act) {
    for (long m0 = 0; m0 < mult; m0 += 2) {
        int count = mult - m0 >= 2 ? 2 : 1;
        FN(taps) t[2];
        v8 seed[2];
        for (int m = 0; m < count; m++) {
            t[m] = FN(taps_make)(weight + 9 * (m0 + m), scale ? scale[m0 + m] : 1.0f, 0);
            seed[m] = (v8)(shift ? shift[m0 + m] : 0.0f);
        }
        if (count == 2) FN(dw4x4_run)(2, 2, dst_m, m0, src, n, t, seed, act);
        else FN(dw4x4_run)(1, 4, dst_m, m0, src, n, t, seed, act);
    }
}

/// Gradients of one channel on 4x4 planes (see dw3_backward). dW[t] = sum over images of
/// G0 * view0[t] + G1 * view1[t], with G's vectors zeroed in the lanes where tap t would read
/// past the plane: the top row's taps for output row 0, the bottom row's for row 3 (on G), and
/// the first and last columns (on the nine sums, once at the end). dIn = the conv of G with the
/// mirrored kernel (same edge masks).
static void FN(dw4x4_backward)(long mult, long batch, float *grad_input, float *grad_weight, const float *grad_output,
                               const float *input, const float *weight, const float *add_to) {
    const v8 low = {1, 1, 1, 1, 0, 0, 0, 0}, high = (v8)1 - low;
    const v8 not_left = {0, 1, 1, 1, 0, 1, 1, 1}, not_right = {1, 1, 1, 0, 1, 1, 1, 0};
    for (long m = 0; m < mult; m++) {
        const float *g = grad_output + m * batch * 16;
        v8 s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0, s8 = 0;
        for (long i = 0; i < batch; i++) {
            FN(plane) p = FN(plane_load)(input + 16 * i);
            v8 g0 = ld8(g + 16 * i), g1 = ld8(g + 16 * i + 8), g0top = g0 * high, g1bottom = g1 * low;
            s1 = MADD(g1, p.inner, MADD(g0top, p.above, s1));
            s4 = MADD(g1, p.r23, MADD(g0, p.r01, s4));
            s7 = MADD(g1bottom, p.below, MADD(g0, p.inner, s7));
            v8 inL = from_left4(p.inner), inR = from_right4(p.inner);
            s0 = MADD(g1, inL, MADD(g0top, from_left4(p.above), s0));
            s3 = MADD(g1, from_left4(p.r23), MADD(g0, from_left4(p.r01), s3));
            s6 = MADD(g1bottom, from_left4(p.below), MADD(g0, inL, s6));
            s2 = MADD(g1, inR, MADD(g0top, from_right4(p.above), s2));
            s5 = MADD(g1, from_right4(p.r23), MADD(g0, from_right4(p.r01), s5));
            s8 = MADD(g1bottom, from_right4(p.below), MADD(g0, inR, s8));
        }
        float *gw = grad_weight + 9 * m;
        gw[0] += hsum8(s0 * not_left); gw[1] += hsum8(s1); gw[2] += hsum8(s2 * not_right);
        gw[3] += hsum8(s3 * not_left); gw[4] += hsum8(s4); gw[5] += hsum8(s5 * not_right);
        gw[6] += hsum8(s6 * not_left); gw[7] += hsum8(s7); gw[8] += hsum8(s8 * not_right);
    }
    if (!grad_input) return;
    for (long m = 0; m < mult; m++) {
        const float *g = grad_output + m * batch * 16;
        FN(taps) t = FN(taps_make)(weight + 9 * m, 1.0f, 1);
        // Output m adds to what the outputs before it left, the first to the residual's gradient.
        const float *base = m > 0 ? grad_input : add_to;
        for (long i = 0; i < batch; i++) {
            v8 seed0 = base ? ld8(base + 16 * i) : (v8)0, seed1 = base ? ld8(base + 16 * i + 8) : (v8)0, d0, d1;
            FN(conv4x4)(FN(plane_load)(g + 16 * i), &t, seed0, seed1, &d0, &d1);
            st8(grad_input + 16 * i, d0); st8(grad_input + 16 * i + 8, d1);
        }
    }
}

#elif LRU_VW == 4  // 4 lanes (SSE2): a plane is four row vectors; a row shift is another register.

static inline __attribute__((always_inline)) vf col_left(vf v) { return __builtin_shufflevector(v, v, 0, 0, 1, 2); }
static inline __attribute__((always_inline)) vf col_right(vf v) { return __builtin_shufflevector(v, v, 1, 2, 3, 3); }

/// Per kernel row ky, the left, centre and right taps, scaled; the left one zero at x = 0 and
/// the right one at x = 3. Mirrored when `reversed`.
typedef struct { vf l[3], c[3], r[3]; } FN(taps);
static inline __attribute__((always_inline)) FN(taps) FN(taps_make)(const float *w, float scale, int reversed) {
    const vf not_left = {0, 1, 1, 1}, not_right = {1, 1, 1, 0};
    FN(taps) k;
    for (int ky = 0; ky < 3; ky++) {
#define TAP(t) (scale * w[reversed ? 8 - (t) : (t)])
        k.l[ky] = splat(TAP(3 * ky)) * not_left;
        k.c[ky] = splat(TAP(3 * ky + 1));
        k.r[ky] = splat(TAP(3 * ky + 2)) * not_right;
#undef TAP
    }
    return k;
}

/// The plane's rows and their column shifts.
typedef struct { vf row[4], left[4], right[4]; } FN(views);
static inline __attribute__((always_inline)) FN(views) FN(views_make)(const float *p) {
    FN(views) q;
    for (int y = 0; y < 4; y++) { q.row[y] = ld(p + 4 * y); q.left[y] = col_left(q.row[y]); q.right[y] = col_right(q.row[y]); }
    return q;
}

/// Output row y = seed + sum over the kernel rows that stay inside the plane.
static inline __attribute__((always_inline)) vf FN(conv_row)(const FN(views) *q, const FN(taps) *k, int y, vf seed) {
    vf acc = seed;
    for (int ky = 0; ky < 3; ky++) {
        int yy = y + ky - 1;
        if (yy < 0 || yy > 3) continue;
        acc = MADD(k->c[ky], q->row[yy], acc);
        acc = MADD(k->l[ky], q->left[yy], acc);
        acc = MADD(k->r[ky], q->right[yy], acc);
    }
    return acc;
}

static inline void FN(dw4x4_images)(float *const *dst_m, const float *src, long n, const float *weight, long mult,
                                    const float *scale, const float *shift, int act) {
    for (long m = 0; m < mult; m++) {
        FN(taps) k = FN(taps_make)(weight + 9 * m, scale ? scale[m] : 1.0f, 0);
        vf seed = splat(shift ? shift[m] : 0.0f);
        for (long i = 0; i < n; i++) {
            FN(views) q = FN(views_make)(src + 16 * i);
            for (int y = 0; y < 4; y++) st(dst_m[m] + 16 * i + 4 * y, act_v(FN(conv_row)(&q, &k, y, seed), act));
        }
    }
}

/// dW[ky][kx] = sum over images and output rows y (with y + ky - 1 inside) of G[y] * view, the
/// column masks applied to the sums at the end; dIn = the conv of G with the mirrored kernel.
static void FN(dw4x4_backward)(long mult, long batch, float *grad_input, float *grad_weight, const float *grad_output,
                               const float *input, const float *weight, const float *add_to) {
    const vf not_left = {0, 1, 1, 1}, not_right = {1, 1, 1, 0};
    for (long m = 0; m < mult; m++) {
        const float *g = grad_output + m * batch * 16;
        vf s[9];
        for (int t = 0; t < 9; t++) s[t] = 0;
        for (long i = 0; i < batch; i++) {
            FN(views) q = FN(views_make)(input + 16 * i);
            for (int y = 0; y < 4; y++) {
                vf gy = ld(g + 16 * i + 4 * y);
                for (int ky = 0; ky < 3; ky++) {
                    int yy = y + ky - 1;
                    if (yy < 0 || yy > 3) continue;
                    s[3 * ky] = MADD(gy, q.left[yy], s[3 * ky]);
                    s[3 * ky + 1] = MADD(gy, q.row[yy], s[3 * ky + 1]);
                    s[3 * ky + 2] = MADD(gy, q.right[yy], s[3 * ky + 2]);
                }
            }
        }
        float *gw = grad_weight + 9 * m;
        for (int ky = 0; ky < 3; ky++) {
            gw[3 * ky] += hsum(s[3 * ky] * not_left);
            gw[3 * ky + 1] += hsum(s[3 * ky + 1]);
            gw[3 * ky + 2] += hsum(s[3 * ky + 2] * not_right);
        }
    }
    if (!grad_input) return;
    for (long m = 0; m < mult; m++) {
        const float *g = grad_output + m * batch * 16;
        FN(taps) k = FN(taps_make)(weight + 9 * m, 1.0f, 1);
        const float *base = m > 0 ? grad_input : add_to;
        for (long i = 0; i < batch; i++) {
            FN(views) q = FN(views_make)(g + 16 * i);
            for (int y = 0; y < 4; y++)
                st(grad_input + 16 * i + 4 * y, FN(conv_row)(&q, &k, y, base ? ld(base + 16 * i + 4 * y) : (vf)0));
        }
    }
}

#else  // 16 lanes: one 4x4 plane per vector, lane 4r + x.

static inline __attribute__((always_inline)) vf row_up(vf v) {      // row r-1 at row r; row 0 junk
    return __builtin_shufflevector(v, v, 0, 1, 2, 3, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11);
}
static inline __attribute__((always_inline)) vf row_down(vf v) {    // row r+1 at row r; row 3 junk
    return __builtin_shufflevector(v, v, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 12, 13, 14, 15);
}
static inline __attribute__((always_inline)) vf col_left(vf v) {    // x-1 at x; x = 0 junk
    return __builtin_shufflevector(v, v, 0, 0, 1, 2, 4, 4, 5, 6, 8, 8, 9, 10, 12, 12, 13, 14);
}
static inline __attribute__((always_inline)) vf col_right(vf v) {   // x+1 at x; x = 3 junk
    return __builtin_shufflevector(v, v, 1, 2, 3, 3, 5, 6, 7, 7, 9, 10, 11, 11, 13, 14, 15, 15);
}

static const float FN(row_mask)[3][16] = {
    {0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0},
};
static const float FN(col_mask)[3][16] = {
    {0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1},
    {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1},
    {1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0, 1, 1, 1, 0},
};

/// The nine views of a plane: view[3*ky + kx] holds, at output (r, x), input (r + ky - 1, x + kx - 1).
typedef struct { vf v[9]; } FN(views);
static inline __attribute__((always_inline)) FN(views) FN(views_make)(vf p) {
    FN(views) q;
    vf l = col_left(p), r = col_right(p);
    q.v[0] = row_up(l); q.v[1] = row_up(p); q.v[2] = row_up(r);
    q.v[3] = l; q.v[4] = p; q.v[5] = r;
    q.v[6] = row_down(l); q.v[7] = row_down(p); q.v[8] = row_down(r);
    return q;
}

/// Nine edge-masked tap vectors of one output channel, scaled; mirrored when `reversed`.
typedef struct { vf t[9]; } FN(taps);
static inline __attribute__((always_inline)) FN(taps) FN(taps_make)(const float *w, float scale, int reversed) {
    FN(taps) k;
    for (int t = 0; t < 9; t++)
        k.t[t] = splat(scale * w[reversed ? 8 - t : t]) * ld(FN(row_mask)[t / 3]) * ld(FN(col_mask)[t % 3]);
    return k;
}

/// seed + sum over taps, three column sums for short dependency chains.
static inline __attribute__((always_inline)) vf FN(conv4x4)(const FN(views) *q, const FN(taps) *k, vf seed) {
    vf c = MADD(k->t[7], q->v[7], MADD(k->t[4], q->v[4], MADD(k->t[1], q->v[1], seed)));
    vf l = MADD(k->t[6], q->v[6], MADD(k->t[3], q->v[3], k->t[0] * q->v[0]));
    vf r = MADD(k->t[8], q->v[8], MADD(k->t[5], q->v[5], k->t[2] * q->v[2]));
    return c + (l + r);
}

/// See the 8-lane version. Each image's views are made once for all output channels.
static inline void FN(dw4x4_images)(float *const *dst_m, const float *src, long n, const float *weight, long mult,
                                    const float *scale, const float *shift, int act) {
    if (mult == 2) {
        FN(taps) t0 = FN(taps_make)(weight, scale ? scale[0] : 1.0f, 0), t1 = FN(taps_make)(weight + 9, scale ? scale[1] : 1.0f, 0);
        vf s0 = splat(shift ? shift[0] : 0.0f), s1 = splat(shift ? shift[1] : 0.0f);
        for (long i = 0; i < n; i++) {
            FN(views) q = FN(views_make)(ld(src + 16 * i));
            st(dst_m[0] + 16 * i, act_v(FN(conv4x4)(&q, &t0, s0), act));
            st(dst_m[1] + 16 * i, act_v(FN(conv4x4)(&q, &t1, s1), act));
        }
        return;
    }
    for (long m = 0; m < mult; m++) {
        FN(taps) t = FN(taps_make)(weight + 9 * m, scale ? scale[m] : 1.0f, 0);
        vf s = splat(shift ? shift[m] : 0.0f);
        for (long i = 0; i < n; i++) {
            FN(views) q = FN(views_make)(ld(src + 16 * i));
            st(dst_m[m] + 16 * i, act_v(FN(conv4x4)(&q, &t, s), act));
        }
    }
}

/// dW[t] = sum over images of G (row-masked for tap t) * view[t], the column masks applied to
/// the nine sums at the end; dIn = the conv of G with the mirrored kernel.
static void FN(dw4x4_backward)(long mult, long batch, float *grad_input, float *grad_weight, const float *grad_output,
                               const float *input, const float *weight, const float *add_to) {
    const vf top = ld(FN(row_mask)[0]), bottom = ld(FN(row_mask)[2]);
    for (long m = 0; m < mult; m++) {
        const float *g = grad_output + m * batch * 16;
        vf s[9];
        for (int t = 0; t < 9; t++) s[t] = 0;
        for (long i = 0; i < batch; i++) {
            FN(views) q = FN(views_make)(ld(input + 16 * i));
            vf g1 = ld(g + 16 * i), g0 = g1 * top, g2 = g1 * bottom;
            s[0] = MADD(g0, q.v[0], s[0]); s[1] = MADD(g0, q.v[1], s[1]); s[2] = MADD(g0, q.v[2], s[2]);
            s[3] = MADD(g1, q.v[3], s[3]); s[4] = MADD(g1, q.v[4], s[4]); s[5] = MADD(g1, q.v[5], s[5]);
            s[6] = MADD(g2, q.v[6], s[6]); s[7] = MADD(g2, q.v[7], s[7]); s[8] = MADD(g2, q.v[8], s[8]);
        }
        float *gw = grad_weight + 9 * m;
        for (int t = 0; t < 9; t++) gw[t] += hsum(s[t] * ld(FN(col_mask)[t % 3]));
    }
    if (!grad_input) return;
    for (long m = 0; m < mult; m++) {
        const float *g = grad_output + m * batch * 16;
        FN(taps) k = FN(taps_make)(weight + 9 * m, 1.0f, 1);
        const float *base = m > 0 ? grad_input : add_to;
        for (long i = 0; i < batch; i++) {
            FN(views) q = FN(views_make)(ld(g + 16 * i));
            st(grad_input + 16 * i, FN(conv4x4)(&q, &k, base ? ld(base + 16 * i) : (vf)0));
        }
    }
}
#endif

// ---------------------------------------------------------------------------------------------
// One input channel over the whole batch (a worker's unit of work); the forward also over part of
// it (`batch` images, the output rows `row` apart), for a layer with fewer channels than threads.

static void FN(dw3_forward)(const lru_dw3 *k, float *dst, const float *input, const float *weight,
                            const float *scale, const float *shift, int act) {
    long mult = k->mult, batch = k->batch, hw = k->hw, w = k->tall.width;
    if (lru_tall_is_square4(&k->tall)) {
        float *rows[8];
        for (long m0 = 0; m0 < mult; m0 += 8) {      // multipliers above 8 go eight at a time
            long mm = mult - m0 < 8 ? mult - m0 : 8;
            for (long m = 0; m < mm; m++) rows[m] = dst + (m0 + m) * k->row;
            FN(dw4x4_images)(rows, input, batch, weight + 9 * m0, mm, scale ? scale + m0 : 0, shift ? shift + m0 : 0, act);
        }
        return;
    }
    if (DW3_ROLLS(w)) {
        for (long m = 0; m < mult; m++)
            FN(dw3_roll)(dst + m * k->row, input, batch, k->tall.height, w, k->left, k->right, weight + 9 * m,
                         scale ? scale[m] : 1.0f, shift ? shift[m] : 0.0f, act);
        return;
    }
    for (long n0 = 0; n0 < batch; n0 += k->tall.images) {
        long n = batch - n0 < k->tall.images ? batch - n0 : k->tall.images;
        FN(tall_fill)(&k->tall, k->pin, input, n0, n);
        for (long m = 0; m < mult; m++) {
            FN(sweep3x3)(k->acc, k->pin, w, lru_tall_flat_n(&k->tall, n), k->left, k->right, weight + 9 * m, 0, 0);
            float sc = scale ? scale[m] : 1.0f, shv = shift ? shift[m] : 0.0f;
            vf s = splat(sc), b = splat(shv);
            float *d0 = dst + m * k->row + n0 * hw;
            for (long i = 0; i < n; i++) {
                const float *a = k->acc + i * k->tall.rows_per_image * w;
                float *d = d0 + i * hw;
                long x = 0;
                for (; x + VW <= hw; x += VW) st(d + x, act_v(MADD(ld(a + x), s, b), act));
                for (; x < hw; x++) d[x] = act_s(a[x] * sc + shv, act);
            }
        }
    }
}

/// With the output gradient in a tall plane G (the input's layout P):
///   dIn = the forward sweep over G with the kernel mirrored (taps reversed, masks swapped by it);
///   dW[ky][kx] = sum_j G[j + W] * P[j + ky*W + kx - 1] * mask_kx[j]  (nine flat dot products;
///   G's separator rows blank the junk outputs).
static void FN(dw3_backward)(const lru_dw3 *k, float *grad_input, float *grad_weight, const float *grad_output,
                             const float *input, const float *weight, const float *add_to) {
    long mult = k->mult, batch = k->batch, hw = k->hw, w = k->tall.width;
    if (lru_tall_is_square4(&k->tall)) {
        FN(dw4x4_backward)(mult, batch, grad_input, grad_weight, grad_output, input, weight, add_to);
        return;
    }
    if (DW3_ROLLS(w) && (mult == 1 || mult == 2)) {
        if (mult == 1) FN(dw3_roll_backward)(1, grad_input, grad_weight, grad_output, k->row, input, batch, k->tall.height, w,
                                             k->left, k->right, weight, add_to);
        else FN(dw3_roll_backward)(2, grad_input, grad_weight, grad_output, k->row, input, batch, k->tall.height, w,
                                   k->left, k->right, weight, add_to);
        return;
    }
    for (long n0 = 0; n0 < batch; n0 += k->tall.images) {
        long n = batch - n0 < k->tall.images ? batch - n0 : k->tall.images;
        long flat = lru_tall_flat_n(&k->tall, n);
        FN(tall_fill)(&k->tall, k->pin, input, n0, n);
        for (long m = 0; m < mult; m++) {
            FN(tall_fill)(&k->tall, k->pout, grad_output + m * batch * hw, n0, n);
            if (n < k->tall.images) FN(tall_clear_past)(&k->tall, k->pout, n);
            const float *g = k->pout + w, *pl = k->pin - 1, *pm = k->pin, *pr = k->pin + 1;
            OPAQUE(pl); OPAQUE(pm); OPAQUE(pr);
            vf s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0, s8 = 0;
            for (long j = 0; j < flat; j += VW) {
                vf gm = ld(g + j), gl = gm * ld(k->left + j), gr = gm * ld(k->right + j);
                s0 = MADD(gl, ld(pl + j), s0); s1 = MADD(gm, ld(pm + j), s1); s2 = MADD(gr, ld(pr + j), s2);
                s3 = MADD(gl, ld(pl + j + w), s3); s4 = MADD(gm, ld(pm + j + w), s4); s5 = MADD(gr, ld(pr + j + w), s5);
                s6 = MADD(gl, ld(pl + j + 2 * w), s6); s7 = MADD(gm, ld(pm + j + 2 * w), s7); s8 = MADD(gr, ld(pr + j + 2 * w), s8);
            }
            float *gw = grad_weight + m * 9;
            gw[0] += hsum(s0); gw[1] += hsum(s1); gw[2] += hsum(s2);
            gw[3] += hsum(s3); gw[4] += hsum(s4); gw[5] += hsum(s5);
            gw[6] += hsum(s6); gw[7] += hsum(s7); gw[8] += hsum(s8);
            // dIn[j] = sum w[ky][kx] * G[j + (2-ky)*W + (1-kx)]: the reversed taps at the forward's offsets.
            if (grad_input) FN(sweep3x3)(k->acc, k->pout, w, flat, k->left, k->right, weight + m * 9, 1, m > 0);
        }
        if (grad_input) {
            float *dst = grad_input + n0 * hw;
            for (long i = 0; i < n; i++) {
                const float *a = k->acc + i * k->tall.rows_per_image * w;
                if (add_to) FN(row_add)(dst + i * hw, a, add_to + (n0 + i) * hw, hw);
                else FN(copy_floats)(dst + i * hw, a, hw);
            }
        }
    }
}

static void FN(dw3_forward_bn)(const lru_dw3 *k, float *out, float *raw, const float *input, const float *weight,
                               const lru_bn_train *bn, long first_output) {
    long l = k->batch * k->hw;
    FN(dw3_forward)(k, raw, input, weight, 0, 0, LRU_ACT_NONE);
    for (long m = 0; m < k->mult; m++) FN(bn_train_row)(bn, out + m * l, raw + m * l, l, first_output + m, 0, 0);
}

static void FN(dw3_backward_bn)(const lru_dw3 *k, float *grad_input, float *grad_weight, const lru_bn_grad *bn,
                                const float *grad_output, const float *raw, const float *input, const float *weight,
                                const float *add_to, long first_output) {
    long l = k->batch * k->hw;
    for (long m = 0; m < k->mult; m++) FN(bn_backward_row)(bn, k->rows + m * l, grad_output + m * l, raw + m * l, l, first_output + m);
    FN(dw3_backward)(k, grad_input, grad_weight, k->rows, input, weight, add_to);
}

// ---------------------------------------------------------------------------------------------
// Depthwise 3x3, stride 2, padding 1 (the baselines' downsampling), one input channel over the
// batch, by polyphase planes. The input is split by row parity and column parity into four
// planes of (ho + 1) x (wo + 1): E (even rows or columns: index 2r) and O (odd ones, shifted by
// one so that index 0 is the zero padding: index 2r - 1). Output (oy, ox) then reads plane
// (rowphase(ky), colphase(kx)) at (oy + [ky == 2], ox + [kx == 2]): one flat offset per tap, so
// a chunk of images is one vector sweep (as the stride-1 tall plane), with no strided loads and
// one junk row and column per image that are never copied out.

static inline __attribute__((always_inline)) void FN(dw3s2_split16)(float *even, float *odd, const float *row, long c) {
    v8 a = ld8(row + 2 * c), b = ld8(row + 2 * c + 8);     // inputs 2c ... 2c+15: E[c ...], O[c+1 ...]
    st8(even + c, __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14));
    st8(odd + c + 1, __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15));
}

static inline __attribute__((always_inline)) void FN(dw3s2_split8)(float *even, float *odd, const float *row, long c) {
    v8 a = ld8(row + 2 * c);
    v4 e = __builtin_shufflevector(a, a, 0, 2, 4, 6), o = __builtin_shufflevector(a, a, 1, 3, 5, 7);
    __builtin_memcpy(even + c, &e, sizeof e);
    __builtin_memcpy(odd + c + 1, &o, sizeof o);
}

// A row's even columns to E[0 ...], its odd ones to O[1 ...]. Whole vectors, the last one
// overlapping the one before (it writes the same values again) instead of a scalar tail.
static inline __attribute__((always_inline)) void FN(dw3s2_split_row)(float *even, float *odd, const float *row, long w) {
    long pairs = w / 2, c = 0;                  // inputs [0, 2 * pairs) by vectors, an odd w's last one alone
    if (pairs >= 8) {
        for (; c + 8 <= pairs; c += 8) FN(dw3s2_split16)(even, odd, row, c);
        if (c < pairs) FN(dw3s2_split16)(even, odd, row, pairs - 8);
    } else if (pairs >= 4) {
        for (; c + 4 <= pairs; c += 4) FN(dw3s2_split8)(even, odd, row, c);
        if (c < pairs) FN(dw3s2_split8)(even, odd, row, pairs - 4);
    } else {
        for (; c < pairs; c++) { even[c] = row[2 * c]; odd[c + 1] = row[2 * c + 1]; }
    }
    if (w % 2) even[pairs] = row[w - 1];
}

/// r[i][j] -> r[j][i] for an 8 x 8 block.
static inline __attribute__((always_inline)) void FN(transpose8)(v8 r[8]) {
    v8 t[8], u[8];
    for (int i = 0; i < 8; i += 2) {
        t[i] = __builtin_shufflevector(r[i], r[i + 1], 0, 8, 1, 9, 4, 12, 5, 13);
        t[i + 1] = __builtin_shufflevector(r[i], r[i + 1], 2, 10, 3, 11, 6, 14, 7, 15);
    }
    for (int i = 0; i < 8; i += 4) {
        u[i] = __builtin_shufflevector(t[i], t[i + 2], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 1] = __builtin_shufflevector(t[i], t[i + 2], 2, 3, 10, 11, 6, 7, 14, 15);
        u[i + 2] = __builtin_shufflevector(t[i + 1], t[i + 3], 0, 1, 8, 9, 4, 5, 12, 13);
        u[i + 3] = __builtin_shufflevector(t[i + 1], t[i + 3], 2, 3, 10, 11, 6, 7, 14, 15);
    }
    for (int j = 0; j < 4; j++) {
        r[j] = __builtin_shufflevector(u[j], u[j + 4], 0, 1, 2, 3, 8, 9, 10, 11);
        r[j + 4] = __builtin_shufflevector(u[j], u[j + 4], 4, 5, 6, 7, 12, 13, 14, 15);
    }
}

/// Lane i's h x w plane (at src + i * lane_stride, for i < n; the other lanes zero) into the
/// inside of the zero-bordered plane `t` of eight-lane pixels, rows w + 2 pixels apart.
static inline __attribute__((always_inline)) void FN(lanes_fill)(float *t, const float *src, long lane_stride, long n,
                                                                   long h, long w) {
    long hw = h * w, pw = w + 2, p = 0;
    // Pixel p goes to row p / w + 1, column p % w + 1: stepped along, since a division per
    // pixel cost as much as the transposes.
    float *at = t + (pw + 1) * 8;
    long x = 0;
    for (; p + 8 <= hw; p += 8) {
        v8 r[8];
        for (int i = 0; i < 8; i++) r[i] = i < n ? ld8(src + i * lane_stride + p) : (v8)0;
        FN(transpose8)(r);
        for (int j = 0; j < 8; j++) {
            st8(at, r[j]);
            at += 8;
            if (++x == w) { x = 0; at += 16; }     // over the right border and the next row's left one
        }
    }
    for (; p < hw; p++) {
        for (int i = 0; i < 8; i++) at[i] = i < n ? src[i * lane_stride + p] : 0.0f;
        at += 8;
        if (++x == w) { x = 0; at += 16; }
    }
}

/// The `count` eight-lane pixels `o` back to planes: lane i (i < n) to dst + i * lane_stride.
static inline __attribute__((always_inline)) void FN(lanes_store)(float *dst, long lane_stride, long n, const float *o,
                                                                    long count) {
    long q = 0;
    for (; q + 8 <= count; q += 8) {
        v8 r[8];
        for (int j = 0; j < 8; j++) r[j] = ld8(o + (q + j) * 8);
        FN(transpose8)(r);
        for (int i = 0; i < n; i++) st8(dst + i * lane_stride + q, r[i]);
    }
    for (; q < count; q++)
        for (int i = 0; i < n; i++) dst[i * lane_stride + q] = o[q * 8 + i];
}

/// The 3x3 taps over a zero-bordered plane of eight-lane pixels `t` (rows `pw` pixels apart):
/// o[oy][ox] = act(sum of k[q] * the tap's pixel, * sc + sh) for the ho x wo outputs at `stride`,
/// the taps in the polyphase sweep's order so both give the same bits.
static inline __attribute__((always_inline)) void FN(lanes_conv)(float *o, const float *t, const v8 k[9], v8 sc, v8 sh, int act,
                                                                   long ho, long wo, long pw, long stride) {
    for (long oy = 0; oy < ho; oy++) {
        for (long ox = 0; ox < wo; ox++) {
            const float *a = t + (stride * oy * pw + stride * ox) * 8, *b = a + pw * 8, *c = b + pw * 8;
            v8 v = k[0] * ld8(a);
            v = MADD(k[1], ld8(a + 8), v);
            v = MADD(k[2], ld8(a + 16), v);
            v = MADD(k[3], ld8(b), v);
            v = MADD(k[4], ld8(b + 8), v);
            v = MADD(k[5], ld8(b + 16), v);
            v = MADD(k[6], ld8(c), v);
            v = MADD(k[7], ld8(c + 8), v);
            v = MADD(k[8], ld8(c + 16), v);
            st8(o + (oy * wo + ox) * 8, act_v8(MADD(v, sc, sh), act));
        }
    }
}

// Small planes (both sides at most 16), eight images at a time, one per lane: each image's
// pixels are transposed into a zero-bordered plane of 8-lane pixels, so every tap is one
// multiply-add with no lane wasted on a short row, and the outputs are transposed back. The
// taps run in the same order as in the polyphase sweep, so both give the same bits.
static void FN(dw3s2_lanes)(float *dst, const float *src, long groups, long h, long w, const float *weight, long mult,
                            long row, const float *scale, const float *shift, int act, float *scratch) {
    long ho = (h - 1) / 2 + 1, wo = (w - 1) / 2 + 1, hw = h * w, how = ho * wo, pw = w + 2;
    float *t = scratch, *o = scratch + (h + 2) * pw * 8;     // t: rows and columns -1 ... h, w
    __builtin_memset(t, 0, (unsigned long)((h + 2) * pw * 8) * sizeof(float));
    for (long g = 0; g < groups; g++) {
        FN(lanes_fill)(t, src + g * 8 * hw, hw, 8, h, w);
        for (long m = 0; m < mult; m++) {
            v8 k[9];
            for (int q = 0; q < 9; q++) k[q] = weight[9 * m + q];
            FN(lanes_conv)(o, t, k, scale ? scale[m] : 1.0f, shift ? shift[m] : 0.0f, act, ho, wo, pw, 2);
            FN(lanes_store)(dst + m * row + g * 8 * how, how, 8, o, how);
        }
    }
}

#if LRU_VW == 8
/// Input row `r` (zero outside the image) at outputs ox0 ... ox0+7 of a stride-2 row: E = in[2ox],
/// O = in[2ox + 1], L = in[2ox - 1] (O one lane up, `carry` (the previous strip's O) or zero
/// into lane 0).
static inline __attribute__((always_inline)) void FN(s2_views)(const float *r, long ox0, v8 carry, v8 *e, v8 *o, v8 *l) {
    v8 a = ld8(r + 2 * ox0), b = ld8(r + 2 * ox0 + 8);
    *e = __builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14);
    *o = __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15);
    *l = __builtin_shufflevector(carry, *o, 7, 8, 9, 10, 11, 12, 13, 14);
}

/// Stride-2 depthwise straight from the images for even widths of at least 16: each output row
/// deinterleaves its three input rows in registers (a strip of 8 outputs at a time) instead of
/// splitting the images into four planes first, which took about 40% of the polyphase kernel's
/// time at 28x28. The taps run in the polyphase sweep's order, so both give the same bits.
/// Valid lanes read only their own row; the last strip's other lanes read up to 15 floats past
/// it (the buffers' slack past the last image) and are never stored, except that a row's last
/// store runs into the next row, written later; the call's very last row stores only its outputs.
static void FN(dw3s2_rows)(float *dst, const float *src, long batch, long h, long w, const float *weight, long mult,
                           long row, const float *scale, const float *shift, int act) {
    long ho = (h - 1) / 2 + 1, wo = w / 2, how = ho * wo, hw = h * w;
    const v8 zero = 0;
    for (long m = 0; m < mult; m++) {
        const float *k = weight + 9 * m;
        v8 k0 = k[0], k1 = k[1], k2 = k[2], k3 = k[3], k4 = k[4], k5 = k[5], k6 = k[6], k7 = k[7], k8 = k[8];
        v8 sc = scale ? scale[m] : 1.0f, sh = shift ? shift[m] : 0.0f;
        for (long i = 0; i < batch; i++) {
            const float *img = src + i * hw;
            float *out = dst + m * row + i * how;
            for (long oy = 0; oy < ho; oy++) {
                long y = 2 * oy;
                const float *r0 = y > 0 ? img + (y - 1) * w : 0, *r1 = img + y * w, *r2 = y + 1 < h ? img + (y + 1) * w : 0;
                v8 c0 = zero, c1 = zero, c2 = zero;
                for (long ox0 = 0; ox0 < wo; ox0 += 8) {
                    v8 e0 = zero, o0 = zero, l0 = zero, e1, o1, l1, e2 = zero, o2 = zero, l2 = zero;
                    if (r0) FN(s2_views)(r0, ox0, c0, &e0, &o0, &l0);
                    FN(s2_views)(r1, ox0, c1, &e1, &o1, &l1);
                    if (r2) FN(s2_views)(r2, ox0, c2, &e2, &o2, &l2);
                    c0 = o0; c1 = o1; c2 = o2;
                    v8 a = k0 * l0;
                    a = MADD(k1, e0, a);
                    a = MADD(k2, o0, a);
                    a = MADD(k3, l1, a);
                    a = MADD(k4, e1, a);
                    a = MADD(k5, o1, a);
                    a = MADD(k6, l2, a);
                    a = MADD(k7, e2, a);
                    a = MADD(k8, o2, a);
                    v8 v = act_v8(MADD(a, sc, sh), act);
                    float *d = out + oy * wo + ox0;
                    if (ox0 + 8 <= wo || i + 1 < batch || oy + 1 < ho) st8(d, v);
                    else FN(st_first)(d, v, wo - ox0);
                }
            }
        }
    }
}
#endif

static void FN(dw3s2_forward)(float *dst, const float *src, long batch, long h, long w, const float *weight, long mult,
                              long row, const float *scale, const float *shift, int act, float *scratch) {
    if (h <= 16 && w <= 16 && batch >= 8) {
        long groups = batch / 8, done = groups * 8;
        FN(dw3s2_lanes)(dst, src, groups, h, w, weight, mult, row, scale, shift, act, scratch);
        if (done == batch) return;
        dst += done * ((h - 1) / 2 + 1) * ((w - 1) / 2 + 1);
        src += done * h * w;
        batch -= done;
    }
#if LRU_VW == 8
    if (w % 2 == 0 && w >= 16) {
        FN(dw3s2_rows)(dst, src, batch, h, w, weight, mult, row, scale, shift, act);
        return;
    }
#endif
    lru_dw3s2 L = lru_dw3s2_layout(h, w);
    long ho = L.ho, wo = L.wo, P = L.pitch, plane = L.plane, how = ho * wo;
    float *ee = scratch, *eo = ee + L.buffer, *oe = eo + L.buffer, *oo = oe + L.buffer, *acc = oo + L.buffer;
    // Padding rows and columns are never written: zero the part of the planes this call uses once.
    long used = (batch < L.images ? batch : L.images) * plane + L.buffer - L.images * plane;
    for (int q = 0; q < 4; q++) __builtin_memset(scratch + q * L.buffer, 0, (unsigned long)used * sizeof(float));
    for (long n0 = 0; n0 < batch; n0 += L.images) {
        long n = batch - n0 < L.images ? batch - n0 : L.images;
        for (long i = 0; i < n; i++) {
            const float *img = src + (n0 + i) * h * w;
            for (long y = 0; y < h; y++) {
                long base = i * plane + ((y + 1) / 2) * P;     // E row y/2 or O row (y+1)/2: the same expression
                if (y % 2 == 0) FN(dw3s2_split_row)(ee + base, eo + base, img + y * w, w);
                else FN(dw3s2_split_row)(oe + base, oo + base, img + y * w, w);
            }
        }
        long flat = (n * plane + VW - 1) / VW * VW;
        for (long m = 0; m < mult; m++) {
            const float *k = weight + 9 * m;
            vf k0 = splat(k[0]), k1 = splat(k[1]), k2 = splat(k[2]), k3 = splat(k[3]), k4 = splat(k[4]);
            vf k5 = splat(k[5]), k6 = splat(k[6]), k7 = splat(k[7]), k8 = splat(k[8]);
            for (long f = 0; f < flat; f += VW) {
                vf a = k0 * ld(oo + f);
                a = MADD(k1, ld(oe + f), a);
                a = MADD(k2, ld(oo + f + 1), a);
                a = MADD(k3, ld(eo + f), a);
                a = MADD(k4, ld(ee + f), a);
                a = MADD(k5, ld(eo + f + 1), a);
                a = MADD(k6, ld(oo + f + P), a);
                a = MADD(k7, ld(oe + f + P), a);
                a = MADD(k8, ld(oo + f + P + 1), a);
                st(acc + f, a);
            }
            // The rows out, through the epilogue. Whole vectors may run past a row into the rows
            // after it, which are written later; near the chunk's end they stop at its end.
            float sc = scale ? scale[m] : 1.0f, sh = shift ? shift[m] : 0.0f;
            vf s = splat(sc), b = splat(sh);
            float *out = dst + m * row + n0 * how;
            long whole = (wo + VW - 1) / VW * VW;
            for (long i = 0; i < n; i++) {
                for (long oy = 0; oy < ho; oy++) {
                    const float *a = acc + i * plane + oy * P;
                    float *d = out + i * how + oy * wo;
                    long x = 0;
                    if (i * how + oy * wo + whole > n * how) {
                        for (; x + VW <= wo; x += VW) st(d + x, act_v(MADD(ld(a + x), s, b), act));
                        for (; x < wo; x++) d[x] = act_s(a[x] * sc + sh, act);
                    } else {
                        for (; x < wo; x += VW) st(d + x, act_v(MADD(ld(a + x), s, b), act));
                    }
                }
            }
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Depthwise 3x3, padding 1, stride 1 or 2, of one image's small planes with eight channels in the
// lanes (the image-lanes kernel above with channels for images): at batch 1 a 4x4 or 7x7 plane
// is a short row or two per channel, and per-channel kernels spend more on setting up taps and
// edge masks than on the multiply-adds. Here each pixel of a zero-bordered plane holds eight
// channels, every tap is one multiply-add with its own eight weights, and no lane is masked.

/// Eight channels' values of taps 0 ... 8 as vectors: k[t] lane i = weight[i * step + t] (lanes
/// at or past n zero).
static inline __attribute__((always_inline)) void FN(channel_taps)(v8 k[9], const float *weight, long step, long n) {
    v8 r[8];
    float last[8] = {0};
    for (int i = 0; i < 8; i++) {
        r[i] = i < n ? ld8(weight + i * step) : (v8)0;
        if (i < n) last[i] = weight[i * step + 8];
    }
    FN(transpose8)(r);
    for (int t = 0; t < 8; t++) k[t] = r[t];
    k[8] = ld8(last);
}

/// Per thread: the bordered plane of eight-lane pixels and the outputs, for sides up to
/// LRU_LANES_MAX_SIDE.
static _Thread_local float FN(lanes_planes)[((LRU_LANES_MAX_SIDE + 2) * (LRU_LANES_MAX_SIDE + 2) +
                                            LRU_LANES_MAX_SIDE * LRU_LANES_MAX_SIDE) * 8] __attribute__((aligned(64)));
/// The plane shape (h * 1024 + w) whose zero border lanes_planes holds; 0 before the first call.
static _Thread_local long FN(lanes_shape);

/// The channel-lanes conv: each output pixel the sum of three kernel-row chains (the first
/// seeded with the shift; the scale is in the taps), so that a pixel waits on three dependent
/// multiply-adds instead of ten.
static inline __attribute__((always_inline)) void FN(channel_lanes_conv)(float *o, const float *t, const v8 k[9], v8 sh, int act,
                                                                           long ho, long wo, long pw, long stride) {
    for (long oy = 0; oy < ho; oy++) {
        const float *row = t + stride * oy * pw * 8;
        float *d = o + oy * wo * 8;
        for (long ox = 0; ox < wo; ox++) {
            const float *a = row + stride * ox * 8, *b = a + pw * 8, *c = b + pw * 8;
            v8 r0 = MADD(k[2], ld8(a + 16), MADD(k[1], ld8(a + 8), MADD(k[0], ld8(a), sh)));
            v8 r1 = MADD(k[5], ld8(b + 16), MADD(k[4], ld8(b + 8), k[3] * ld8(b)));
            v8 r2 = MADD(k[8], ld8(c + 16), MADD(k[7], ld8(c + 8), k[6] * ld8(c)));
            st8(d + ox * 8, act_v8(r0 + (r1 + r2), act));
        }
    }
}

/// Lane i = p[i * step] for i < n, the rest `fill`; whole loads where the lanes are one or two apart.
static inline __attribute__((always_inline)) v8 FN(lanes_gather)(const float *p, long step, long n, float fill) {
    if (n == 8 && step == 1) return ld8(p);
    if (n == 8 && step == 2) return __builtin_shufflevector(ld8(p), ld8(p + 8), 0, 2, 4, 6, 8, 10, 12, 14);
    v8 v = fill;
    for (int i = 0; i < n; i++) v[i] = p[i * step];
    return v;
}

static void FN(dw3_channel_lanes)(float *dst, long out_stride, const float *src, long in_stride, long channels,
                                  long h, long w, long stride, const float *weight, long mult, const float *scale,
                                  const float *shift, int act) {
    if (h > LRU_LANES_MAX_SIDE || w > LRU_LANES_MAX_SIDE) __builtin_trap();     // the caller's contract
    long ho = (h - 1) / stride + 1, wo = (w - 1) / stride + 1, how = ho * wo, pw = w + 2;
    float *t = FN(lanes_planes), *o = t + (h + 2) * pw * 8;     // t: rows and columns -1 ... h, w
    // The border stays zero from one call to the next on planes of the same shape: only the
    // pixels inside are written. A reused block's tile calls this once per group of channels.
    if (FN(lanes_shape) != h * 1024 + w) {
        __builtin_memset(t, 0, (unsigned long)((h + 2) * pw * 8) * sizeof(float));
        FN(lanes_shape) = h * 1024 + w;
    }
    for (long c0 = 0; c0 < channels; c0 += 8) {
        long n = channels - c0 < 8 ? channels - c0 : 8;
        FN(lanes_fill)(t, src + c0 * in_stride, in_stride, n, h, w);
        for (long m = 0; m < mult; m++) {
            long first = c0 * mult + m;                     // output channel of lane 0; lane i's is first + i*mult
            v8 k[9];
            FN(channel_taps)(k, weight + first * 9, mult * 9, n);
            if (scale) {
                v8 sc = FN(lanes_gather)(scale + first, mult, n, 1.0f);
                for (int q = 0; q < 9; q++) k[q] *= sc;
            }
            v8 sh = shift ? FN(lanes_gather)(shift + first, mult, n, 0.0f) : (v8)0;
            FN(channel_lanes_conv)(o, t, k, sh, act, ho, wo, pw, stride);
            FN(lanes_store)(dst + first * out_stride, mult * out_stride, n, o, how);
        }
    }
}
