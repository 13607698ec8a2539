// LruNet's max pooling (3x3, stride 2, padding 1) in 8-lane vectors on every path: PyTorch's
// semantics, NaN propagating, the first maximum winning, padding never taken.

/// The larger lane by lane, NaN if b is (b > a, or b unordered).
static inline __attribute__((always_inline)) v8 vmax_nan8(v8 a, v8 b) {
    v8i take = (b > a) | (b != b);
    return (v8)(((v8i)b & take) | ((v8i)a & ~take));
}

/// Planes at most 16 wide: one output row per step, the vertical maximum of its three input
/// rows as two vectors, then their even lanes (x = 2ox), odd lanes (2ox+1) and odd lanes moved
/// up one (2ox-1). Reads 16 floats from each row start (buffers carry slack); writes a whole
/// vector only where it stays inside the plane, since the next plane may be another thread's.
static void FN(maxpool3s2_narrow)(float *dst, const float *src, long h, long w, long ho, long wo) {
    const v8 xs = {1, 3, 5, 7, 9, 11, 13, 15};
    v8i past_right = xs >= (v8)(float)w;
    for (long oy = 0; oy < ho; oy++) {
        long y = 2 * oy;
        const float *r1 = src + y * w, *r0 = y > 0 ? r1 - w : r1, *r2 = y + 1 < h ? r1 + w : r1;
        v8 lo = vmax_nan8(vmax_nan8(ld8(r0), ld8(r1)), ld8(r2));
        v8 hi = vmax_nan8(vmax_nan8(ld8(r0 + 8), ld8(r1 + 8)), ld8(r2 + 8));
        v8 even = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14);
        v8 odd = __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15);
        v8 before = __builtin_shufflevector(lo, hi, 0, 1, 3, 5, 7, 9, 11, 13);   // x = 2ox-1, lane 0 clamped
        v8 odd_in = (v8)(((v8i)even & past_right) | ((v8i)odd & ~past_right));
        v8 m = vmax_nan8(vmax_nan8(before, even), odd_in);
        float *d = dst + oy * wo;
        if (oy * wo + 8 <= ho * wo) st8(d, m);
        else for (long x = 0; x < wo; x++) d[x] = m[x];
    }
}

/// With argmax, 8 outputs at a time. Each input row of the window is copied into `t` with
/// -infinity for the padding at x = -1 and x >= w; the three taps of 8 outputs are then its even
/// lanes (x = 2ox-1), odd lanes (2ox) and even lanes one further (2ox+1). Taps are taken in
/// PyTorch's order (rows, then columns, ascending) with its rule `v > best || isnan(v)`.
static void FN(maxpool3s2_argmax)(float *dst, int32_t *idx, const float *src, long h, long w, long ho, long wo, float *t) {
    long padded = lru_argmax_row_count(wo);
    const v8i lanes = {0, 1, 2, 3, 4, 5, 6, 7};
    const float inf = __builtin_inff();
    for (long oy = 0; oy < ho; oy++) {
        long y0 = 2 * oy - 1 > 0 ? 2 * oy - 1 : 0, y1 = 2 * oy + 1 < h - 1 ? 2 * oy + 1 : h - 1;
        for (long y = y0; y <= y1; y++) {            // the window's rows, padded
            float *r = t + (y - y0) * padded;
            r[0] = -inf;
            for (long x = 0; x < w; x++) r[1 + x] = src[y * w + x];
            for (long x = 1 + w; x < padded; x++) r[x] = -inf;
        }
        for (long ox0 = 0; ox0 < wo; ox0 += 8) {
            v8i x_left = 2 * ((v8i)(int32_t)ox0 + lanes) - 1;
            v8 best = (v8)(-inf);
            v8i at = (v8i)(int32_t)(y0 * w) + (x_left & ~(x_left >> 31));   // the first valid tap: max(x_left, 0)
            for (long y = y0; y <= y1; y++) {
                const float *r = t + (y - y0) * padded + 2 * ox0;
                v8 a = ld8(r), b = ld8(r + 8), c = ld8(r + 2), d = ld8(r + 10);
                v8i base = (v8i)(int32_t)(y * w) + x_left;
                v8 taps[3] = {__builtin_shufflevector(a, b, 0, 2, 4, 6, 8, 10, 12, 14),
                              __builtin_shufflevector(a, b, 1, 3, 5, 7, 9, 11, 13, 15),
                              __builtin_shufflevector(c, d, 0, 2, 4, 6, 8, 10, 12, 14)};
                for (int q = 0; q < 3; q++) {
                    v8 v = taps[q];
                    v8i take = (v > best) | (v != v);
                    best = (v8)(((v8i)v & take) | ((v8i)best & ~take));
                    at = ((base + q) & take) | (at & ~take);
                }
            }
            long n = wo - ox0 < 8 ? wo - ox0 : 8;
            for (long l = 0; l < n; l++) { dst[oy * wo + ox0 + l] = best[l]; idx[oy * wo + ox0 + l] = at[l]; }
        }
    }
}

// Global average pooling: dst[p] = mean of plane p (`plane` values). Eight lanes at a time, in
// the same order on every path, so every kernel path gives the same bits.
static void FN(plane_means)(float *dst, const float *src, long planes, long plane) {
    float inv = 1.0f / (float)plane;
    for (long p = 0; p < planes; p++) {
        const float *x = src + p * plane;
        v8 acc = 0;
        long j = 0;
        for (; j + 8 <= plane; j += 8) acc += ld8(x + j);
        float s = hsum8(acc);
        for (; j < plane; j++) s += x[j];
        dst[p] = s * inv;
    }
}
