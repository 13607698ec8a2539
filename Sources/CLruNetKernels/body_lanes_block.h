// The reused block at batch 1 with eight channels in the vector lanes (NCHWc8) for all its
// iterations (layout and schedule in ReuseLanes.swift). Per channel block, a plane of eight-lane
// pixels with a zero border; per pointwise group, the depthwise (two outputs per input block)
// into a small buffer of eight-lane pixels, then the 1x1 as output vectors of eight channels:
// each weight vector (eight output rows at one input channel, packed once per pass) times the
// broadcast depthwise value. The shuffle between iterations interleaves the lanes of group g's
// blocks and group g+4's into whole output blocks. Nothing is transposed between iterations:
// only entering the block and leaving it.

static void FN(lanes_block_pack)(float *pw_packed, float *dw_taps, const float *pw, const float *dw, long planes,
                                 long g_begin, long g_end) {
    long cin = planes / 8, nb = cin / 8, k = 2 * cin;
    for (long g = g_begin; g < g_end; g++) {
        // Group g's weights as [k'][row of the group], k' = (bb*2 + m)*8 + i for input channel
        // g*cin + bb*8 + i and multiplier m (the order of the depthwise buffer's values).
        float *wp = pw_packed + g * cin * k;
        for (long rb = 0; rb < nb; rb++)
            for (long bb = 0; bb < nb; bb++) {
                v8 even[8], odd[8];
                for (int j = 0; j < 8; j++) {
                    const float *row = pw + (g * cin + rb * 8 + j) * k + 16 * bb;
                    v8 lo = ld8(row), hi = ld8(row + 8);
                    even[j] = __builtin_shufflevector(lo, hi, 0, 2, 4, 6, 8, 10, 12, 14);
                    odd[j] = __builtin_shufflevector(lo, hi, 1, 3, 5, 7, 9, 11, 13, 15);
                }
                FN(transpose8)(even);
                FN(transpose8)(odd);
                for (int i = 0; i < 8; i++) {
                    st8(wp + ((bb * 2 + 0) * 8 + i) * cin + rb * 8, even[i]);
                    st8(wp + ((bb * 2 + 1) * 8 + i) * cin + rb * 8, odd[i]);
                }
            }
        // The depthwise taps of the group's input blocks, eight channels per vector.
        for (long b = g * nb; b < (g + 1) * nb; b++)
            for (long m = 0; m < 2; m++) {
                v8 t[9];
                FN(channel_taps)(t, dw + (16 * b + m) * 9, 18, 8);
                for (int q = 0; q < 9; q++) st8(dw_taps + ((b * 2 + m) * 9 + q) * 8, t[q]);
            }
    }
}

static void FN(lanes_block_enter)(float *x, const float *rows, long ld, long h, long w, long b_begin, long b_end) {
    long bordered = (h + 2) * (w + 2) * 8;
    for (long b = b_begin; b < b_end; b++) FN(lanes_fill)(x + b * bordered, rows + b * 8 * ld, ld, 8, h, w);
}

static void FN(lanes_block_leave)(float *rows, long ld, const float *x, long h, long w, long b_begin, long b_end,
                                  float *scratch) {
    long bordered = (h + 2) * (w + 2) * 8, plane = h * w;
    for (long b = b_begin; b < b_end; b++) {
        for (long yy = 0, p = 0; yy < h; yy++)
            for (long xx = 0; xx < w; xx++, p++) st8(scratch + p * 8, ld8(x + b * bordered + ((yy + 1) * (w + 2) + xx + 1) * 8));
        FN(lanes_store)(rows + b * 8 * ld, ld, 8, scratch, plane);
    }
}

/// NR output vectors (row blocks rb ...) x NP pixels (from p0) of one group's 1x1: acc = sum over
/// k' of the packed weight vector times depthwise value k' of the pixel; then the epilogue
/// (BN, residual, ReLU) into out[r][p] (unbordered, eight lanes per pixel).
static inline __attribute__((always_inline)) void FN(lanes_pw_block)(const int NR, const int NP, float *out, const float *d,
                                                                       const float *wp, long cin, long k, long plane,
                                                                       long rb, long p0, const v8 *scale, const v8 *shift,
                                                                       const float *const *res, const long *inner) {
    v8 acc[2][12];
#pragma unroll
    for (int r = 0; r < NR; r++)
#pragma unroll
        for (int p = 0; p < NP; p++) acc[r][p] = (v8)0;
    for (long kb = 0; kb < k / 8; kb++) {
        const float *dk = d + kb * plane * 8 + p0 * 8;
        for (int i = 0; i < 8; i++) {
            const float *wk = wp + (kb * 8 + i) * cin + rb * 8;
            v8 wv[2];
#pragma unroll
            for (int r = 0; r < NR; r++) wv[r] = ld8(wk + r * 8);
#pragma unroll
            for (int p = 0; p < NP; p++) {
                v8 dv = (v8)dk[p * 8 + i];
#pragma unroll
                for (int r = 0; r < NR; r++) acc[r][p] = MADD(wv[r], dv, acc[r][p]);
            }
        }
    }
#pragma unroll
    for (int r = 0; r < NR; r++)
#pragma unroll
        for (int p = 0; p < NP; p++) {
            v8 v = MADD(acc[r][p], scale[rb + r], shift[rb + r]) + ld8(res[rb + r] + inner[p0 + p] * 8);
            st8(out + ((rb + r) * plane + p0 + p) * 8, act_v8(v, LRU_ACT_RELU));
        }
}

/// One group's depthwise and 1x1 with its epilogue, into out (nb blocks, unbordered).
static void FN(lanes_group)(float *out, const float *x, long g, long planes, long h, long w, const float *pw_packed,
                            const float *dw_taps, const lru_iteration_weights *k, float *d, const long *inner) {
    long cin = planes / 8, nb = cin / 8, kk = 2 * cin, plane = h * w, bordered = (h + 2) * (w + 2) * 8;
    for (long bb = 0; bb < nb; bb++) {
        long b = g * nb + bb;
        for (long m = 0; m < 2; m++) {
            v8 t[9];
            v8 sc = FN(lanes_gather)(k->dw_scale + 16 * b + m, 2, 8, 1.0f);
            for (int q = 0; q < 9; q++) t[q] = ld8(dw_taps + ((b * 2 + m) * 9 + q) * 8) * sc;
            v8 sh = FN(lanes_gather)(k->dw_shift + 16 * b + m, 2, 8, 0.0f);
            FN(channel_lanes_conv)(d + (bb * 2 + m) * plane * 8, x + b * bordered, t, sh, LRU_ACT_NONE, h, w, w + 2, 1);
        }
    }
    v8 scale[64], shift[64];
    const float *res[64];
    for (long rb = 0; rb < nb; rb++) {
        scale[rb] = ld8(k->pw_scale + g * cin + rb * 8);
        shift[rb] = ld8(k->pw_shift + g * cin + rb * 8);
        res[rb] = x + (g * nb + rb) * bordered;
    }
    const float *wp = pw_packed + g * cin * kk;
    // Two row blocks x six pixels (12 accumulators), the last pixels in one narrower block; a
    // lone row block x eight pixels. Blocks of fewer than eight accumulators wait on FMA latency.
#define PW(NR, NP) FN(lanes_pw_block)(NR, NP, out, d, wp, cin, kk, plane, rb, p, scale, shift, res, inner)
    long rb = 0;
    for (; rb + 2 <= nb; rb += 2) {
        long p = 0;
        for (; p + 6 <= plane; p += 6) PW(2, 6);
        switch (plane - p) {
            case 1: PW(2, 1); break;
            case 2: PW(2, 2); break;
            case 3: PW(2, 3); break;
            case 4: PW(2, 4); break;
            case 5: PW(2, 5); break;
        }
    }
    for (; rb < nb; rb++) {
        long p = 0;
        for (; p + 8 <= plane; p += 8) PW(1, 8);
        for (; p + 4 <= plane; p += 4) PW(1, 4);
        for (; p < plane; p++) PW(1, 1);
    }
#undef PW
}

static void FN(lanes_block_pair)(float *y, const float *x, long g, long planes, long h, long w, const float *pw_packed,
                                 const float *dw_taps, const lru_iteration_weights *k, int shuffle, float *scratch) {
    long nb = planes / 64, plane = h * w, bordered = (h + 2) * (w + 2) * 8;
    long inner[LRU_LANES_MAX_SIDE * LRU_LANES_MAX_SIDE];
    for (long yy = 0, p = 0; yy < h; yy++)
        for (long xx = 0; xx < w; xx++, p++) inner[p] = (yy + 1) * (w + 2) + xx + 1;
    float *d = scratch, *low = d + 2 * nb * plane * 8, *high = low + nb * plane * 8;
    FN(lanes_group)(high, x, g + 4, planes, h, w, pw_packed, dw_taps, k, d, inner);
    FN(lanes_group)(low, x, g, planes, h, w, pw_packed, dw_taps, k, d, inner);
    for (long rb = 0; rb < nb; rb++) {
        long j = g * nb + rb;
        const float *lo = low + rb * plane * 8, *hi = high + rb * plane * 8;
        for (long p = 0; p < plane; p++) {
            v8 o = ld8(lo + p * 8), e = ld8(hi + p * 8);
            long at = inner[p] * 8;
            if (shuffle) {
                // Channel r < C/2 goes to 2r + 1, channel r + C/2 to 2r: block j's lanes to the
                // odd lanes of blocks 2j and 2j + 1, block j + C/16's to the even ones.
                st8(y + 2 * j * bordered + at, __builtin_shufflevector(e, o, 0, 8, 1, 9, 2, 10, 3, 11));
                st8(y + (2 * j + 1) * bordered + at, __builtin_shufflevector(e, o, 4, 12, 5, 13, 6, 14, 7, 15));
            } else {
                st8(y + j * bordered + at, o);
                st8(y + (j + 4 * nb) * bordered + at, e);
            }
        }
    }
}
