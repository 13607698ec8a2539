// The weight gradient of a small grouped 1x1 convolution in training: dW += dY x X^T, where
// dW is a few dozen rows and columns and the sum runs over a whole batch of pixels (tens of
// thousands). Library GEMMs pack and tile for large output blocks and spend most of their
// time on overhead here; this kernel keeps an MO x MK block of dot products in registers,
// lanes over pixels, and walks the pixels in panels short enough that the panel's rows of
// dY and X stay in L1 while every block passes over them.

#if LRU_VW == 16
enum { NT_MO = 8, NT_MK = 3 };     // 24 accumulators, 3 X vectors and one dY vector of 32 registers
#elif LRU_VW == 8
enum { NT_MO = 4, NT_MK = 3 };     // 12 accumulators + 3 + 1 of 16
#else
enum { NT_MO = 3, NT_MK = 3 };     // SSE's multiply and add need a temporary besides the 9 + 3 + 1
#endif
/// Pixels per panel: (rows of dY + rows of X) x 256 floats stay in L1 for lru's groups.
#define NT_PANEL 256L

#if LRU_FMA
#define MADD1(a, b, c) __builtin_fmaf((a), (b), (c))
#else
#define MADD1(a, b, c) ((a) * (b) + (c))
#endif

/// c[i][j] += sum over pixels [0, n) of a[i][p] * b[j][p] for MO rows i and MK rows j. Inlined
/// with constant MO and MK, the accumulators live in registers; each pixel vector loads MO + MK
/// vectors for MO*MK multiply-adds. The sum of a lane's products runs in pixel order, then the
/// lanes are added, then the last n % VW pixels: the same order whichever rows share a block.
static inline __attribute__((always_inline)) void FN(nt_block)(const int MO, const int MK, float *c, long ldc,
                                                                const float *a, long lda, const float *b, long ldb, long n) {
    vf acc[8][3];
#pragma unroll
    for (int i = 0; i < MO; i++)
#pragma unroll
        for (int j = 0; j < MK; j++) acc[i][j] = 0;
    long p = 0;
    for (; p + VW <= n; p += VW) {
        vf bv[3];
#pragma unroll
        for (int j = 0; j < MK; j++) bv[j] = ld(b + j * ldb + p);
#pragma unroll
        for (int i = 0; i < MO; i++) {
            vf av = ld(a + i * lda + p);
#pragma unroll
            for (int j = 0; j < MK; j++) acc[i][j] = MADD(av, bv[j], acc[i][j]);
        }
    }
#pragma unroll
    for (int i = 0; i < MO; i++)
#pragma unroll
        for (int j = 0; j < MK; j++) {
            float s = hsum(acc[i][j]);
            for (long q = p; q < n; q++) s = MADD1(a[i * lda + q], b[j * ldb + q], s);
            c[i * ldc + j] += s;
        }
}

/// MO rows of dY against every row of X, MK rows at a time, then the last ones one by one.
static inline __attribute__((always_inline)) void FN(nt_rows)(const int MO, float *c, long ldc, const float *a, long lda,
                                                               const float *b, long ldb, long k, long n) {
    long j = 0;
    for (; j + NT_MK <= k; j += NT_MK) FN(nt_block)(MO, NT_MK, c + j, ldc, a, lda, b + j * ldb, ldb, n);
    for (; j < k; j++) FN(nt_block)(MO, 1, c + j, ldc, a, lda, b + j * ldb, ldb, n);
}

static void FN(gemm_nt_accumulate)(float *c, long ldc, const float *a, long lda, long m, const float *b, long ldb,
                                   long k, long n) {
    for (long p0 = 0; p0 < n; p0 += NT_PANEL) {
        long pn = n - p0 < NT_PANEL ? n - p0 : NT_PANEL;
        long i = 0;
        for (; i + NT_MO <= m; i += NT_MO) FN(nt_rows)(NT_MO, c + i * ldc, ldc, a + i * lda + p0, lda, b + p0, ldb, k, pn);
        for (; i < m; i++) FN(nt_rows)(1, c + i * ldc, ldc, a + i * lda + p0, lda, b + p0, ldb, k, pn);
    }
}
#undef MADD1
