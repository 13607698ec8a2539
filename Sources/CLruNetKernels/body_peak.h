// The FMA peak: independent multiply-add chains, enough to cover the latency of every FMA pipe.

#if LRU_VW == 16
#define PEAK_CHAINS 24
#elif LRU_FMA
#define PEAK_CHAINS 12
#else
#define PEAK_CHAINS 6      // 8 lanes are two SSE registers each
#endif

static double FN(fma_peak)(long iterations) {
    vf a[PEAK_CHAINS];
#pragma unroll
    for (int j = 0; j < PEAK_CHAINS; j++) a[j] = splat(1.0f + 1e-3f * (float)j);
    vf m = splat(0.9999999f), c = splat(1e-7f);
    for (long i = 0; i < iterations; i++) {
#pragma unroll
        for (int j = 0; j < PEAK_CHAINS; j++) a[j] = MADD(a[j], m, c);
    }
    vf s = 0;
#pragma unroll
    for (int j = 0; j < PEAK_CHAINS; j++) s += a[j];
    volatile float sink = hsum(s);
    (void)sink;
    return (double)iterations * PEAK_CHAINS * VW * 2;
}
#undef PEAK_CHAINS
