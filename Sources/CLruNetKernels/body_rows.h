// Row loops and BatchNorm rows. LLVM will not vectorise a float sum without reassociation, so
// the reductions are written out: LRU_VW lanes, two accumulators to hide the add latency.

static void FN(row_affine)(float *out, const float *x, long n, float scale, float shift, const float *r, int act) {
    vf s = splat(scale), b = splat(shift);
    long i = 0;
    for (; i + VW <= n; i += VW) {
        vf v = MADD(ld(x + i), s, b);
        if (r) v += ld(r + i);
        st(out + i, act_v(v, act));
    }
    for (; i < n; i++) {
        float v = x[i] * scale + shift;
        if (r) v += r[i];
        out[i] = act_s(v, act);
    }
}

static void FN(relu6)(float *out, const float *x, long n) {
    long i = 0;
    for (; i + VW <= n; i += VW) st(out + i, relu6_v(ld(x + i)));
    for (; i < n; i++) out[i] = act_s(x[i], LRU_ACT_RELU6);
}

static void FN(row_relu6_grad)(float *g, const float *x, const float *y, long n) {
    long i = 0;
    for (; i + VW <= n; i += VW) {
        vf v = ld(y + i);
        vi keep = (v > (vf)0) & (v < (vf)6);
        st(g + i, (vf)((vi)ld(x + i) & keep));
    }
    for (; i < n; i++) g[i] = y[i] > 0 && y[i] < 6 ? x[i] : 0;
}

static void FN(row_relu_grad)(float *g, const float *x, const float *mask, long n) {
    long i = 0;
    for (; i + VW <= n; i += VW) {
        vi keep = ld(mask + i) > (vf)0;
        st(g + i, (vf)((vi)ld(x + i) & keep));
    }
    for (; i < n; i++) g[i] = mask[i] > 0 ? x[i] : 0;
}

static void FN(row_add)(float *out, const float *a, const float *b, long n) {
    long i = 0;
    for (; i + VW <= n; i += VW) st(out + i, ld(a + i) + ld(b + i));
    for (; i < n; i++) out[i] = a[i] + b[i];
}

static void FN(relu)(float *out, const float *x, long n) {
    long i = 0;
    for (; i + VW <= n; i += VW) st(out + i, relu_v(ld(x + i)));
    for (; i < n; i++) out[i] = x[i] < 0 ? 0 : x[i];
}

static void FN(bn_fold)(float *scale, float *shift, const float *gamma, const float *beta, const float *mean,
                        const float *variance, long channels, float eps) {
    long c = 0;
    for (; c + VW <= channels; c += VW) {
        vf s = ld(gamma + c) / __builtin_elementwise_sqrt(ld(variance + c) + splat(eps));
        st(scale + c, s);
        st(shift + c, ld(beta + c) - ld(mean + c) * s);
    }
    for (; c < channels; c++) {
        float s = gamma[c] / __builtin_elementwise_sqrt(variance[c] + eps);
        scale[c] = s;
        shift[c] = beta[c] - mean[c] * s;
    }
}

static inline float FN(row_sum)(const float *x, long n) {
    vf a = 0, b = 0;
    long i = 0;
    for (; i + 2 * VW <= n; i += 2 * VW) { a += ld(x + i); b += ld(x + i + VW); }
    float s = hsum(a + b);
    for (; i < n; i++) s += x[i];
    return s;
}

/// Sum of (x - mean)^2.
static inline float FN(row_centered_squares)(const float *x, long n, float mean) {
    vf m = splat(mean), a = 0, b = 0;
    long i = 0;
    for (; i + 2 * VW <= n; i += 2 * VW) {
        vf d0 = ld(x + i) - m, d1 = ld(x + i + VW) - m;
        a = MADD(d0, d0, a); b = MADD(d1, d1, b);
    }
    float s = hsum(a + b);
    for (; i < n; i++) { float d = x[i] - mean; s += d * d; }
    return s;
}

/// The multiply-add training's BatchNorm applies from batch statistics.
static inline void FN(bn_affine)(float gamma, float beta, float mean, float invstd, float *scale, float *shift) {
    float s = gamma * invstd;
    *scale = s;
    *shift = beta - mean * s;
}

static void FN(bn_train_row)(const lru_bn_train *bn, float *out, const float *x, long n, long c,
                             const float *residual, int act) {
    // Two passes (mean, then centred squares): accurate for these row lengths.
    float mean = FN(row_sum)(x, n) / (float)n;
    float sq = FN(row_centered_squares)(x, n, mean);
    float variance = sq / (float)n;
    float invstd = 1.0f / __builtin_elementwise_sqrt(variance + bn->eps);
    bn->saved_mean[c] = mean;
    bn->saved_invstd[c] = invstd;
    float scale, shift;
    FN(bn_affine)(bn->gamma[c], bn->beta[c], mean, invstd, &scale, &shift);
    if (out) FN(row_affine)(out, x, n, scale, shift, residual, act);
    float unbiased = n > 1 ? sq / (float)(n - 1) : variance;
    bn->running_mean[c] = (1 - bn->momentum) * bn->running_mean[c] + bn->momentum * mean;
    bn->running_var[c] = (1 - bn->momentum) * bn->running_var[c] + bn->momentum * unbiased;
}

/// Backward's two sums over a row: sum(dy) and sum(dy * (x - mean)).
static inline void FN(bn_grad_sums)(const float *dy, const float *x, long n, float mean, float *sum_dy, float *centred) {
    vf m = splat(mean), s = 0, d = 0;
    long i = 0;
    for (; i + VW <= n; i += VW) {
        vf y = ld(dy + i);
        s += y;
        d = MADD(y, ld(x + i) - m, d);
    }
    float a = hsum(s), b = hsum(d);
    for (; i < n; i++) { a += dy[i]; b += dy[i] * (x[i] - mean); }
    *sum_dy = a;
    *centred = b;
}

/// dx = gamma*invstd/count * (count*dy - sum_dy - xhat*sum_dy_xhat), the sums taken over all
/// `count` values of the channel (here or pooled across processes). `dx` may be `dy` or `x`.
static inline void FN(bn_grad_apply)(float *dx, const float *dy, const float *x, long n, float mean, float inv, float gamma,
                                     float sum_dy, float sum_dy_xhat, float count) {
    float k = gamma * inv / count;
    float a = k * count, b = -k * sum_dy, q = -k * inv * sum_dy_xhat;
    vf av = splat(a), bv = splat(b), qv = splat(q), m = splat(mean);
    long i = 0;
    for (; i + VW <= n; i += VW) st(dx + i, MADD(qv, ld(x + i) - m, MADD(av, ld(dy + i), bv)));
    for (; i < n; i++) dx[i] = a * dy[i] + b + q * (x[i] - mean);
}

/// dx = gamma*invstd/n * (n*dy - sum(dy) - xhat*sum(dy*xhat)); gamma's and beta's gradients accumulate.
static void FN(bn_backward_row)(const lru_bn_grad *bn, float *dx, const float *dy, const float *x, long n, long c) {
    float mean = bn->saved_mean[c], inv = bn->saved_invstd[c];
    float sum_dy, centred;
    FN(bn_grad_sums)(dy, x, n, mean, &sum_dy, &centred);
    float sum_dy_xhat = centred * inv;
    bn->grad_gamma[c] += sum_dy_xhat;
    bn->grad_beta[c] += sum_dy;
    FN(bn_grad_apply)(dx, dy, x, n, mean, inv, bn->gamma[c], sum_dy, sum_dy_xhat, (float)n);
}

/// The reused block's backward through relu(bn(x) + res) for one channel, in two passes instead
/// of four: gy = (mask > 0) ? g : 0 (the gradient at the pre-ReLU sum, also the residual's), then
/// dx = bn_backward_row's dx of gy (same bits); returns the sum of dx (see the folded 1x1's weight
/// gradient). gamma's and beta's gradients accumulate.
static float FN(bn_relu_backward_row)(const lru_bn_grad *bn, float *dx, float *gy, const float *g, const float *mask,
                                      const float *x, long n, long c) {
    float mean = bn->saved_mean[c], inv = bn->saved_invstd[c];
    vf m = splat(mean), s = 0, d = 0;
    long i = 0;
    for (; i + VW <= n; i += VW) {
        vf y = (vf)((vi)ld(g + i) & (vi)(ld(mask + i) > (vf)0));
        st(gy + i, y);
        s += y;
        d = MADD(y, ld(x + i) - m, d);
    }
    float sum_dy = hsum(s), centred = hsum(d);
    for (; i < n; i++) {
        float y = mask[i] > 0 ? g[i] : 0;
        gy[i] = y;
        sum_dy += y;
        centred += y * (x[i] - mean);
    }
    float sum_dy_xhat = centred * inv;
    bn->grad_gamma[c] += sum_dy_xhat;
    bn->grad_beta[c] += sum_dy;
    float count = (float)n, k = bn->gamma[c] * inv / count;
    float a = k * count, b = -k * sum_dy, q = -k * inv * sum_dy_xhat;
    vf av = splat(a), bv = splat(b), qv = splat(q), acc = 0;
    for (i = 0; i + VW <= n; i += VW) {
        vf v = MADD(qv, ld(x + i) - m, MADD(av, ld(gy + i), bv));
        st(dx + i, v);
        acc += v;
    }
    float total = hsum(acc);
    for (; i < n; i++) {
        dx[i] = a * gy[i] + b + q * (x[i] - mean);
        total += dx[i];
    }
    return total;
}

// Synchronised BatchNorm: statistics pooled over every process of a data-parallel run. A row
// contributes (sum, M2 + n*mean^2) with its own two-pass mean, in double, so the pooled variance
// keeps the accuracy of the two-pass one; backward contributes sum(dy) and sum(dy*(x - mean)).

static void FN(bn_row_moments)(const float *x, long n, double *sums) {
    float sum = FN(row_sum)(x, n), mean = sum / (float)n;
    float m2 = FN(row_centered_squares)(x, n, mean);
    sums[0] = (double)sum;
    sums[1] = (double)m2 + (double)n * (double)mean * (double)mean;
}

static void FN(bn_pooled_statistics)(const lru_bn_train *bn, const double *sums, long channels, double count,
                                     float *scale, float *shift) {
    for (long c = 0; c < channels; c++) {
        double mean = sums[2 * c] / count, variance = sums[2 * c + 1] / count - mean * mean;
        if (variance < 0) variance = 0;
        float m = (float)mean, v = (float)variance;
        float invstd = 1.0f / __builtin_elementwise_sqrt(v + bn->eps);
        bn->saved_mean[c] = m;
        bn->saved_invstd[c] = invstd;
        FN(bn_affine)(bn->gamma[c], bn->beta[c], m, invstd, scale + c, shift + c);
        float unbiased = count > 1 ? (float)(variance * count / (count - 1)) : v;
        bn->running_mean[c] = (1 - bn->momentum) * bn->running_mean[c] + bn->momentum * m;
        bn->running_var[c] = (1 - bn->momentum) * bn->running_var[c] + bn->momentum * unbiased;
    }
}

static void FN(bn_grad_row_sums)(const lru_bn_grad *bn, const float *dy, const float *x, long n, long c, double *sums) {
    float sum_dy, centred;
    FN(bn_grad_sums)(dy, x, n, bn->saved_mean[c], &sum_dy, &centred);
    bn->grad_gamma[c] += centred * bn->saved_invstd[c];
    bn->grad_beta[c] += sum_dy;
    sums[0] = (double)sum_dy;
    sums[1] = (double)centred;
}

static void FN(bn_pooled_backward_row)(const lru_bn_grad *bn, float *dx, const float *dy, const float *x, long n, long c,
                                       const double *sums, double count) {
    float inv = bn->saved_invstd[c];
    FN(bn_grad_apply)(dx, dy, x, n, bn->saved_mean[c], inv, bn->gamma[c], (float)sums[2 * c],
                      (float)sums[2 * c + 1] * inv, (float)count);
}
