// The reused block's inference on a tile of images (layout and schedule in ReuseTile.swift):
// per pointwise group, the depthwise rows (with their BN) into a small buffer, then a
// register-blocked 1x1 kernel whose epilogue applies BN, adds the residual, takes the ReLU and
// writes the row to its place after the channel shuffle.

/// Depthwise 3x3 of one channel over n images in a tall plane, * scale + shift, into a compact
/// row (image i at i*H*W). Each image's last vector may run up to a vector past it, into the
/// next image's start (rewritten when that image is done) or the row's padding (the tile's row
/// stride keeps a vector of it). The BN scale multiplies the taps once they are in registers
/// and the shift seeds the centre column; two vectors per step give the core independent chains.
static inline void FN(tile_tall_images)(float *dst, const float *p, const lru_tall *t, long n, const float *left,
                                        const float *right, const float *k, float scale, float shift) {
    long w = t->width, hw = t->height * w, step = t->rows_per_image * w;
    vf a0 = splat(scale * k[0]), b0 = splat(scale * k[1]), c0 = splat(scale * k[2]);
    vf a1 = splat(scale * k[3]), b1 = splat(scale * k[4]), c1 = splat(scale * k[5]);
    vf a2 = splat(scale * k[6]), b2 = splat(scale * k[7]), c2 = splat(scale * k[8]);
    vf sh = splat(shift);
    const float *pl = p - 1, *pm = p, *pr = p + 1;
    OPAQUE(pl); OPAQUE(pm); OPAQUE(pr);
#define OUTPUT(j) ({ long j_ = (j); \
        vf l_ = a0 * ld(pl + j_), m_ = MADD(b0, ld(pm + j_), sh), r_ = c0 * ld(pr + j_); \
        l_ = MADD(a1, ld(pl + j_ + w), l_); m_ = MADD(b1, ld(pm + j_ + w), m_); r_ = MADD(c1, ld(pr + j_ + w), r_); \
        l_ = MADD(a2, ld(pl + j_ + 2 * w), l_); m_ = MADD(b2, ld(pm + j_ + 2 * w), m_); r_ = MADD(c2, ld(pr + j_ + 2 * w), r_); \
        MADD(ld(right + j_), r_, MADD(ld(left + j_), l_, m_)); })
    for (long i = 0; i < n; i++) {
        float *d = dst + i * hw;
        long j0 = i * step, q = 0;
        for (; q + VW < hw; q += 2 * VW) {
            vf v0 = OUTPUT(j0 + q), v1 = OUTPUT(j0 + q + VW);
            st(d + q, v0); st(d + q + VW, v1);
        }
        if (q < hw) st(d + q, OUTPUT(j0 + q));
    }
#undef OUTPUT
}

static void FN(tile_depthwise)(float *dw_rows, const float *res, long c_base, long c_begin, long c_end, long n,
                               const lru_tile *t, const lru_iteration_weights *k, float *tall_buffer,
                               const float *left, const float *right) {
    long ld_ = t->ld;
    float *pad = tall_buffer + LRU_TALL_ORIGIN;
    int square4 = lru_tall_is_square4(&t->tall);
    for (long c = c_begin; c < c_end; c++) {
        float *out0 = dw_rows + 2 * (c - c_base) * ld_;
        if (square4) {
            float *rows[2] = {out0, out0 + ld_};
            FN(dw4x4_images)(rows, res + c * ld_, n, k->dw + 18 * c, 2, k->dw_scale + 2 * c, k->dw_shift + 2 * c, LRU_ACT_NONE);
            continue;
        }
        FN(tall_fill)(&t->tall, pad, res + c * ld_, 0, n);
        for (long m = 0; m < 2; m++) {
            long o = 2 * c + m;
            FN(tile_tall_images)(out0 + m * ld_, pad, &t->tall, n, left, right, k->dw + 9 * o, k->dw_scale[o], k->dw_shift[o]);
        }
    }
}

/// The epilogue of the tile's 1x1: out[dest(c)] = relu(acc * scale[c] + shift[c] + res[c]).
typedef struct {
    float *out;
    const float *res, *scale, *shift;
    long ld, channels;
    int shuffle;
} FN(epilogue);

/// Row c's part of the epilogue, its scale and shift broadcast once for all its vectors.
static inline __attribute__((always_inline)) void FN(epilogue_row)(const FN(epilogue) *e, const vf *acc, int nv, long c,
                                                                     long col) {
    long dest = e->shuffle ? lru_shuffle_destination(c, e->channels) : c;
    vf sc = splat(e->scale[c]), sh = splat(e->shift[c]);
    const float *res = e->res + c * e->ld + col;
    float *out = e->out + dest * e->ld + col;
    for (int j = 0; j < nv; j++) st(out + j * VW, relu_v(MADD(acc[j], sc, ld(res + j * VW)) + sh));
}

/// Between the rows of a 1x1 block: keeps the scheduler from loading the next row's weight
/// before the last FMA of this one, which needs a 17th register on the 16-register paths and
/// spilled an accumulator.
#if LRU_VW < 16
#define ROW_FENCE() __asm__ volatile("" ::: "memory")
#else
#define ROW_FENCE() ((void)0)
#endif

/// R rows from `r` x NV vectors from column `col` of C = W x B, handed to the epilogue. Inlined
/// with constant R and NV, the accumulator array lives in registers. Each k step loads NV
/// vectors of B and R weights for R*NV multiply-adds.
static inline __attribute__((always_inline)) void FN(pw_block)(const int R, const int NV, const FN(epilogue) *e,
                                                                 const float *b, long ldb, const float *w, long k,
                                                                 long r, long col) {
    vf acc[8][6];
#pragma unroll
    for (int i = 0; i < R; i++)
#pragma unroll
        for (int j = 0; j < NV; j++) acc[i][j] = 0;
    const float *bp = b + col;
    for (long kk = 0; kk < k; kk++) {
#if LRU_VW == 4
        // SSE's two-operand multiply needs a temporary: broadcast the R weights first, then
        // stream B one vector at a time through them (R + 2 registers besides the accumulators).
        vf s[8];
#pragma unroll
        for (int i = 0; i < R; i++) s[i] = splat(w[i * k + kk]);
#pragma unroll
        for (int j = 0; j < NV; j++) {
            vf bj = ld(bp + j * VW);
#pragma unroll
            for (int i = 0; i < R; i++) acc[i][j] = MADD(s[i], bj, acc[i][j]);
        }
#else
        vf bv[6];
#pragma unroll
        for (int j = 0; j < NV; j++) bv[j] = ld(bp + j * VW);
#pragma unroll
        for (int i = 0; i < R; i++) {
            if (i > 0) ROW_FENCE();
            vf s = splat(w[i * k + kk]);
#pragma unroll
            for (int j = 0; j < NV; j++) acc[i][j] = MADD(s, bv[j], acc[i][j]);
        }
#endif
        bp += ldb;
    }
#pragma unroll
    for (int i = 0; i < R; i++) FN(epilogue_row)(e, acc[i], NV, r + i, col);
}

/// Rows [r_begin, r_end) of the group over `columns` columns (whole vectors), R rows and up to
/// NV vectors at a time.
static inline __attribute__((always_inline)) void FN(pw_rows)(const int R, const int NV, const FN(epilogue) *e, const float *b,
                                                                long ldb, const float *w0, long k, long r_begin, long r_end,
                                                                long columns, long row0) {
    for (long r = r_begin; r + R <= r_end; r += R) {
        const float *w = w0 + (r - row0) * k;
        long col = 0;
        for (; col + NV * VW <= columns; col += NV * VW) FN(pw_block)(R, NV, e, b, ldb, w, k, r, col);
        while (col < columns) {          // the last columns, in narrower blocks
            long left = (columns - col) / VW;
            if (NV > 4 && left >= 4) { FN(pw_block)(R, 4, e, b, ldb, w, k, r, col); col += 4 * VW; }
            else if (left >= 2) { FN(pw_block)(R, 2, e, b, ldb, w, k, r, col); col += 2 * VW; }
            else { FN(pw_block)(R, 1, e, b, ldb, w, k, r, col); col += VW; }
        }
    }
}

static void FN(tile_pointwise)(float *next, const float *res, const float *dw_rows, long g, long r_begin, long r_end,
                               long n, const lru_tile *t, const lru_iteration_weights *k, int shuffle) {
    long cin = t->group_in, c0 = g * cin, kk = 2 * cin;
    long columns = (n * t->plane + VW - 1) & ~(long)(VW - 1);
    FN(epilogue) e = {next, res, k->pw_scale, k->pw_shift, t->ld, t->planes, shuffle};
    const float *w0 = k->pw + c0 * kk;
#if LRU_VW == 16
    // 8 rows x 3 vectors: 24 accumulators, 3 B vectors and a broadcast in 32 registers.
    long r8 = r_begin + ((r_end - r_begin) & ~7L);
    FN(pw_rows)(8, 3, &e, dw_rows, t->ld, w0, kk, r_begin, r8, columns, c0);
    FN(pw_rows)(4, 3, &e, dw_rows, t->ld, w0, kk, r8, r_end, columns, c0);
#elif LRU_VW == 8
    // 4 rows x 3 vectors: 12 accumulators, 3 B vectors and a broadcast in 16 registers.
    FN(pw_rows)(4, 3, &e, dw_rows, t->ld, w0, kk, r_begin, r_end, columns, c0);
#else
    // SSE: 2 rows x 6 vectors, so a k step needs only two weight broadcasts (a load and a
    // shuffle each, where AVX2 has one broadcast load) for its 12 multiply-adds.
    FN(pw_rows)(2, 6, &e, dw_rows, t->ld, w0, kk, r_begin, r_end, columns, c0);
#endif
}
