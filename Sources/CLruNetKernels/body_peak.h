// The FMA peak: independent multiply-add chains, enough to cover the latency of every FMA pipe.

#if LRU_VW == 16
#define PEAK_CHAINS 24
#else
#define PEAK_CHAINS 12
#endif

static double FN(fma_peak)(long iterations) {
    // Read through volatile so the compiler cannot fold the chains into a constant.
    volatile float seed[3] = {1.0f, 0.9999999f, 1e-7f};
    vf a[PEAK_CHAINS];
#pragma unroll
    for (int j = 0; j < PEAK_CHAINS; j++) a[j] = splat(seed[0] + 1e-3f * (float)j);
    vf m = splat(seed[1]), c = splat(seed[2]);
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
