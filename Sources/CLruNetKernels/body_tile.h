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
    if (t->channel_lanes) {
        for (long i = 0; i < n; i++)
            FN(dw3_channel_lanes)(dw_rows + 2 * (c_begin - c_base) * ld_ + i * t->plane, ld_, res + c_begin * ld_ + i * t->plane,
                                  ld_, c_end - c_begin, t->height, t->width, 1, k->dw + 18 * c_begin, 2,
                                  k->dw_scale + 2 * c_begin, k->dw_shift + 2 * c_begin, LRU_ACT_NONE);
        return;
    }
    for (long c = c_begin; c < c_end; c++) {
        float *out0 = dw_rows + 2 * (c - c_base) * ld_;
        if (square4) {
            float *rows[2] = {out0, out0 + ld_};
            FN(dw4x4_images)(rows, res + c * ld_, n, k->dw + 18 * c, 2, k->dw_scale + 2 * c, k->dw_shift + 2 * c, LRU_ACT_NONE);
            continue;
        }
        if (DW3_ROLLS(t->width)) {
            for (long m = 0; m < 2; m++)
                FN(dw3_roll)(out0 + m * ld_, res + c * ld_, n, t->height, t->width, left, right, k->dw + 9 * (2 * c + m),
                             k->dw_scale[2 * c + m], k->dw_shift[2 * c + m], LRU_ACT_NONE);
            continue;
        }
        FN(tall_fill)(&t->tall, pad, res + c * ld_, 0, n);
        for (long m = 0; m < 2; m++) {
            long o = 2 * c + m;
            FN(tile_tall_images)(out0 + m * ld_, pad, &t->tall, n, left, right, k->dw + 9 * o, k->dw_scale[o], k->dw_shift[o]);
        }
    }
}

/// What happens to each finished vector of a 1x1 GEMM's output: for row r (and dest(r), the
/// channel shuffle when `shuffle`), out[dest(r)] = act(acc * scale[r] + shift[r] + res[r]);
/// without `scale`, out[dest(r)] = act(acc (+ res[r])).
typedef struct {
    float *out;
    long ldo;
    const float *res;
    long ldr;
    const float *scale, *shift;
    long channels;
    int shuffle, act;
    const int32_t *dest;
} FN(epilogue);

/// Where row r goes: the tile's LruNet shuffle, a destination table, or row r.
static inline __attribute__((always_inline)) long FN(epilogue_dest)(const FN(epilogue) *e, long r) {
    return e->shuffle ? lru_shuffle_destination(r, e->channels) : e->dest ? e->dest[r] : r;
}

static inline __attribute__((always_inline)) float FN(epilogue_value)(const FN(epilogue) *e, float acc, long r, long col) {
    float v = e->scale ? acc * e->scale[r] + e->shift[r] : acc;
    if (e->res) v += e->res[r * e->ldr + col];
    return act_s(v, e->act);
}

/// Row r's part of the epilogue, its scale and shift broadcast once for all its vectors.
static inline __attribute__((always_inline)) void FN(epilogue_row)(const FN(epilogue) *e, const vf *acc, int nv, long r,
                                                                     long col) {
    float *out = e->out + FN(epilogue_dest)(e, r) * e->ldo + col;
    if (e->scale) {
        vf sc = splat(e->scale[r]), sh = splat(e->shift[r]);
        if (e->res) {
            const float *res = e->res + r * e->ldr + col;
            for (int j = 0; j < nv; j++) st(out + j * VW, act_v(MADD(acc[j], sc, ld(res + j * VW)) + sh, e->act));
        } else {
            for (int j = 0; j < nv; j++) st(out + j * VW, act_v(MADD(acc[j], sc, sh), e->act));
        }
    } else {
        for (int j = 0; j < nv; j++) {
            vf v = acc[j];
            if (e->res) v += ld(e->res + r * e->ldr + col + j * VW);
            st(out + j * VW, act_v(v, e->act));
        }
    }
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

/// Rows [r_begin, r_begin + R*floor(n/R)) over columns [c0, columns) (whole vectors), R rows
/// and up to NV vectors at a time. Column panels are the outer loop: a panel of B (NV vectors
/// wide, all k rows) stays in L1 while every row block passes over it, where row blocks outside
/// would stream all of B once per block.
static inline __attribute__((always_inline)) void FN(pw_rows)(const int R, const int NV, const FN(epilogue) *e, const float *b,
                                                                long ldb, const float *w0, long k, long r_begin, long r_end,
                                                                long c0, long columns, long row0) {
    long r_last = r_begin + ((r_end - r_begin) / R) * R;
    if (r_last <= r_begin) return;
    long col = c0;
    for (; col + NV * VW <= columns; col += NV * VW)
        for (long r = r_begin; r < r_last; r += R) FN(pw_block)(R, NV, e, b, ldb, w0 + (r - row0) * k, k, r, col);
    while (col < columns) {          // the last columns, in narrower panels
        long left = (columns - col) / VW;
        if (NV > 4 && left >= 4) {
            for (long r = r_begin; r < r_last; r += R) FN(pw_block)(R, 4, e, b, ldb, w0 + (r - row0) * k, k, r, col);
            col += 4 * VW;
        } else if (left >= 2) {
            for (long r = r_begin; r < r_last; r += R) FN(pw_block)(R, 2, e, b, ldb, w0 + (r - row0) * k, k, r, col);
            col += 2 * VW;
        } else {
            for (long r = r_begin; r < r_last; r += R) FN(pw_block)(R, 1, e, b, ldb, w0 + (r - row0) * k, k, r, col);
            col += VW;
        }
    }
}

static void FN(tile_pointwise)(float *next, const float *res, const float *dw_rows, long g, long r_begin, long r_end,
                               long n, const lru_tile *t, const lru_iteration_weights *k, int shuffle) {
    long cin = t->group_in, c0 = g * cin, kk = 2 * cin;
    long columns = (n * t->plane + VW - 1) & ~(long)(VW - 1);
    FN(epilogue) e = {next, t->ld, res, t->ld, k->pw_scale, k->pw_shift, t->planes, shuffle, LRU_ACT_RELU, 0};
    const float *w0 = k->pw + c0 * kk;
#if LRU_VW == 16
    // 8 rows x 3 vectors: 24 accumulators, 3 B vectors and a broadcast in 32 registers.
    long r8 = r_begin + ((r_end - r_begin) & ~7L);
    FN(pw_rows)(8, 3, &e, dw_rows, t->ld, w0, kk, r_begin, r8, 0, columns, c0);
    FN(pw_rows)(4, 3, &e, dw_rows, t->ld, w0, kk, r8, r_end, 0, columns, c0);
#elif LRU_VW == 8
    // 4 rows x 3 vectors: 12 accumulators, 3 B vectors and a broadcast in 16 registers.
    FN(pw_rows)(4, 3, &e, dw_rows, t->ld, w0, kk, r_begin, r_end, 0, columns, c0);
#else
    // SSE: 2 rows x 6 vectors, so a k step needs only two weight broadcasts (a load and a
    // shuffle each, where AVX2 has one broadcast load) for its 12 multiply-adds.
    FN(pw_rows)(2, 6, &e, dw_rows, t->ld, w0, kk, r_begin, r_end, 0, columns, c0);
#endif
}

/// R rows of the last columns (n < VW of them, from `col`) from a packed, zero-padded one-vector
/// panel: the vector's epilogue, then only its n valid lanes stored.
static inline __attribute__((always_inline)) void FN(pw_tail)(const int R, const FN(epilogue) *e, const float *p, const float *w,
                                                                long k, long r, long col, long n) {
    vf acc[8];
#pragma unroll
    for (int i = 0; i < R; i++) acc[i] = 0;
    for (long kk = 0; kk < k; kk++) {
        vf bv = ld(p + kk * VW);
#pragma unroll
        for (int i = 0; i < R; i++) acc[i] = MADD(splat(w[i * k + kk]), bv, acc[i]);
    }
    for (int i = 0; i < R; i++) {
        float lane[VW];
        st(lane, acc[i]);
        long dest = FN(epilogue_dest)(e, r + i);
        for (long j = 0; j < n; j++) e->out[dest * e->ldo + col + j] = FN(epilogue_value)(e, lane[j], r + i, col + j);
    }
}

/// Floats of the per-thread buffer a panel of B is packed into.
#define PACK_FLOATS (48 * 1024)
static _Thread_local float FN(packed)[PACK_FLOATS] __attribute__((aligned(64)));

/// Copies k rows of `width` floats (at stride ldb) into a contiguous panel.
static inline void FN(pack_panel)(float *dst, const float *b, long ldb, long k, long width) {
    for (long kk = 0; kk < k; kk++) FN(copy_floats)(dst + kk * width, b + kk * ldb, width);
}

/// Rows [0, rows) over one panel of NV vectors (column `col` of b, k rows at stride ldb): R-row
/// blocks, then the rows left over in blocks of 4, 2 and 1.
static inline __attribute__((always_inline)) void FN(pw_panel)(const int R, const int NV, const FN(epilogue) *e, const float *b,
                                                                 long ldb, const float *w, long k, long rows, long col) {
    long r = 0;
    for (; r + R <= rows; r += R) FN(pw_block)(R, NV, e, b, ldb, w + r * k, k, r, col);
    if (R > 4 && r + 4 <= rows) { FN(pw_block)(R > 4 ? 4 : 1, NV, e, b, ldb, w + r * k, k, r, col); r += 4; }
    if (R > 2 && r + 2 <= rows) { FN(pw_block)(R > 2 ? 2 : 1, NV, e, b, ldb, w + r * k, k, r, col); r += 2; }
    for (; r < rows; r++) FN(pw_block)(1, NV, e, b, ldb, w + r * k, k, r, col);
}

/// C = W x B with the epilogue, for any shape: rows [0, rows) of W (row r at w + r*k), columns
/// [c0, c1) of B (k rows at stride ldb). Whole vectors through the register blocks, then the
/// last columns (fewer than a vector) in scalar code. When several row blocks pass over a
/// panel and it fits, the panel is first packed contiguously: B's rows are often a power of
/// two apart (16 KB for 4x4 maps at batch 256), which maps a strided panel onto a few L1 sets.
static void FN(gemm_epilogue_run)(const float *w, long k, const float *b, long ldb, long rows, long c0, long c1,
                              const lru_gemm_epilogue *ge) {
    FN(epilogue) e = {ge->out, ge->ldo, ge->res, ge->ldr, ge->scale, ge->shift, rows, 0, ge->act, ge->dest};
    long vec_end = c0 + ((c1 - c0) / VW) * VW;
    // Wide panels of NV vectors, R rows at a time; narrower panels (a row's last vectors, or all
    // of a small map's row at batch 1) take taller blocks of R3, R2 or R1 rows, so that there are
    // still enough independent accumulators to hide the FMA latency.
#if LRU_VW == 16
    enum { R = 8, NV = 3, R3 = 8, R2 = 8, R1 = 8 };
#elif LRU_VW == 8
    // 2 rows x 4 vectors: 8 accumulators (two per FMA pipe's latency), 4 B vectors and a
    // broadcast; two broadcasts per 8 multiply-adds, where 4 x 3 needs four per 12.
    enum { R = 2, NV = 4, R3 = 4, R2 = 4, R1 = 8 };
#else
    // SSE broadcasts a block's R weights into registers first: at most 4 rows beside 8 accumulators.
    enum { R = 2, NV = 6, R3 = 2, R2 = 4, R1 = 4 };
#endif
    int packs = rows >= 2 * R;
    for (long col = c0; col < vec_end;) {
        long left = (vec_end - col) / VW;
        long nv = left >= NV ? NV : left >= 3 ? 3 : left;
        const float *panel = b;
        long ld = ldb;
        if (packs && ldb > nv * VW && k * nv * VW <= PACK_FLOATS) {
            FN(pack_panel)(FN(packed), b + col, ldb, k, nv * VW);
            panel = FN(packed) - col;
            ld = nv * VW;
        }
        if (nv == NV) FN(pw_panel)(R, NV, &e, panel, ld, w, k, rows, col);
        else if (nv == 3) FN(pw_panel)(R3, 3, &e, panel, ld, w, k, rows, col);
        else if (nv == 2) FN(pw_panel)(R2, 2, &e, panel, ld, w, k, rows, col);
        else FN(pw_panel)(R1, 1, &e, panel, ld, w, k, rows, col);
        col += nv * VW;
    }
    if (vec_end == c1) return;
    long n = c1 - vec_end;
    if (k * VW <= PACK_FLOATS) {         // the last columns, zero-padded to one vector
        float *p = FN(packed);
        for (long kk = 0; kk < k; kk++) {
            for (long j = 0; j < VW; j++) p[kk * VW + j] = j < n ? b[kk * ldb + vec_end + j] : 0.0f;
        }
        long r = 0;
        for (; r + R1 <= rows; r += R1) FN(pw_tail)(R1, &e, p, w + r * k, k, r, vec_end, n);
        if (R1 > 4 && r + 4 <= rows) { FN(pw_tail)(R1 > 4 ? 4 : 1, &e, p, w + r * k, k, r, vec_end, n); r += 4; }
        for (; r < rows; r++) FN(pw_tail)(1, &e, p, w + r * k, k, r, vec_end, n);
        return;
    }
    for (long r = 0; r < rows; r++) {
        const float *wr = w + r * k;
        for (long col = vec_end; col < c1; col++) {
            float acc = 0;
            for (long kk = 0; kk < k; kk++) acc += wr[kk] * b[kk * ldb + col];
            e.out[FN(epilogue_dest)(&e, r) * e.ldo + col] = FN(epilogue_value)(&e, acc, r, col);
        }
    }
}
