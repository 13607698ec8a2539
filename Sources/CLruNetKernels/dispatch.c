// Picks the instruction set once, from what the CPU reports, and forwards every entry point
// of lrunet_kernels.h to that set's table. Also the layout arithmetic every set shares.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "table.h"
#include "layout.h"
#if defined(__x86_64__)
#include <cpuid.h>
#endif

// ---------------------------------------------------------------------------------------------
// What the CPU can run.

static struct {
    int probed, avx2, avx512, avx512bf16;
    char description[160];
} cpu;

#if defined(__x86_64__)
static unsigned long long xgetbv0(void) {
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}
#endif

static void probe(void) {
    if (__atomic_load_n(&cpu.probed, __ATOMIC_ACQUIRE)) return;
#if defined(__x86_64__)
    unsigned a = 0, b = 0, c = 0, d = 0;
    char vendor[13] = {0};
    __get_cpuid(0, &a, &b, &c, &d);
    memcpy(vendor, &b, 4); memcpy(vendor + 4, &d, 4); memcpy(vendor + 8, &c, 4);
    __get_cpuid(1, &a, &b, &c, &d);
    unsigned family = (a >> 8) & 0xf, model = (a >> 4) & 0xf;
    if (family == 0xf) family += (a >> 20) & 0xff;
    if (family >= 6) model |= ((a >> 16) & 0xf) << 4;
    int fma = (c >> 12) & 1, osxsave = (c >> 27) & 1, avx = (c >> 28) & 1;
    unsigned long long xcr0 = osxsave ? xgetbv0() : 0;
    int ymm = (xcr0 & 0x6) == 0x6, zmm = (xcr0 & 0xe6) == 0xe6;     // the OS saves YMM / ZMM state
    unsigned b7 = 0, c7 = 0, d7 = 0, a7 = 0;
    __get_cpuid_count(7, 0, &a7, &b7, &c7, &d7);
    int avx2 = (b7 >> 5) & 1, f = (b7 >> 16) & 1, dq = (b7 >> 17) & 1, bw = (b7 >> 30) & 1, vl = (b7 >> 31) & 1;
    cpu.avx2 = avx && avx2 && fma && ymm;
    cpu.avx512 = cpu.avx2 && f && dq && bw && vl && zmm;
    if (a7 >= 1) {   // leaf 7, subleaf 1: AVX-512 BF16 (Cooper Lake, Sapphire Rapids and later)
        unsigned a71 = 0, b71 = 0, c71 = 0, d71 = 0;
        __get_cpuid_count(7, 1, &a71, &b71, &c71, &d71);
        cpu.avx512bf16 = cpu.avx512 && ((a71 >> 5) & 1);
    }
    snprintf(cpu.description, sizeof cpu.description, "%s family %u model %u: sse2%s%s%s%s", vendor, family, model,
             avx && ymm ? " avx" : "", cpu.avx2 ? " avx2" : "", fma ? " fma" : "",
             f && zmm ? (cpu.avx512 ? " avx512f/bw/vl/dq" : " avx512f") : "");
#else
    snprintf(cpu.description, sizeof cpu.description, "non-x86 CPU: portable vectors only");
#endif
    __atomic_store_n(&cpu.probed, 1, __ATOMIC_RELEASE);
}

int lru_isa_supported(int isa) {
    probe();
    switch (isa) {
#define SUPPORTED(id, suffix, name, lanes, supported) case LRU_ISA_##id: return (supported) != 0;
    LRU_ISA_LIST(SUPPORTED)
#undef SUPPORTED
    default: return 0;
    }
}

/// The widest set the CPU runs; the test-only avx2-w16 never (it is slower than avx2).
int lru_isa_best(void) {
    probe();
    return cpu.avx512 ? LRU_ISA_AVX512 : cpu.avx2 ? LRU_ISA_AVX2 : LRU_ISA_BASELINE;
}

const char *lru_isa_name(int isa) {
    switch (isa) {
#define NAME(id, suffix, name, lanes, supported) case LRU_ISA_##id: return name;
    LRU_ISA_LIST(NAME)
#undef NAME
    default: return "unknown";
    }
}

int lru_isa_lanes(int isa) {
    switch (isa) {
#define LANES(id, suffix, name, lanes, supported) case LRU_ISA_##id: return lanes;
    LRU_ISA_LIST(LANES)
#undef LANES
    default: return 4;
    }
}

const char *lru_cpu_description(void) { probe(); return cpu.description; }
int lru_cpu_has_avx512bf16(void) { probe(); return cpu.avx512bf16; }

// ---------------------------------------------------------------------------------------------
// The active table.

static const lru_table *table_of(int isa) {
    switch (isa) {
#define TABLE(id, suffix, name, lanes, supported) case LRU_ISA_##id: return &lru_table_##suffix;
    LRU_ISA_LIST(TABLE)
#undef TABLE
    }
    return &lru_table_baseline;
}

static const lru_table *active;
static int active_isa = -1;

/// LRUNET_ISA, if it names a set this CPU supports; else the best set. (An unknown or
/// unsupported name is reported as an error by the Swift side when a model is built.)
static int initial_isa(void) {
    const char *env = getenv("LRUNET_ISA");
    if (env) {
        for (int isa = 0; isa < LRU_ISA_COUNT; isa++)
            if (strcasecmp(env, lru_isa_name(isa)) == 0 && lru_isa_supported(isa)) return isa;
    }
    return lru_isa_best();
}

const lru_table *lru_active_table(void) {
    const lru_table *t = __atomic_load_n(&active, __ATOMIC_ACQUIRE);
    if (__builtin_expect(t != 0, 1)) return t;
    int isa = initial_isa();
    __atomic_store_n(&active_isa, isa, __ATOMIC_RELAXED);
    __atomic_store_n(&active, table_of(isa), __ATOMIC_RELEASE);
    return table_of(isa);
}

int lru_isa_select(int isa) {
    if (isa < 0 || isa >= LRU_ISA_COUNT || !lru_isa_supported(isa)) return -1;
    __atomic_store_n(&active_isa, isa, __ATOMIC_RELAXED);
    __atomic_store_n(&active, table_of(isa), __ATOMIC_RELEASE);
    return 0;
}

int lru_isa_active(void) {
    lru_active_table();
    return __atomic_load_n(&active_isa, __ATOMIC_RELAXED);
}

#define T (lru_active_table())

// ---------------------------------------------------------------------------------------------
// Layouts (the same for every set).

lru_tall lru_tall_layout(long height, long width, long batch, long chunk_values) {
    lru_tall t;
    t.height = height; t.width = width; t.rows_per_image = height + 1;
    long fit = chunk_values / ((height + 1) * width);
    t.images = batch < fit ? batch : fit;
    if (t.images < 1) t.images = 1;
    t.flat = lru_round_lanes(t.images * t.rows_per_image * width);
    t.buffer_count = LRU_TALL_ORIGIN + t.flat + 3 * width + 2 * LRU_MAX_LANES;
    return t;
}

void lru_tall_masks(const lru_tall *t, float *left, float *right) {
    for (long j = 0; j < t->flat; j++) {
        long x = j % t->width;
        left[j] = x != 0;
        right[j] = x != t->width - 1;
    }
}

int lru_tall_square4(const lru_tall *t) { return lru_tall_is_square4(t); }

/// Values per chunk of images: a chunk's planes stay in L1/L2.
#define DW3_CHUNK 4096
#define DW3S2_CHUNK 4096

long lru_dw3_scratch_count(long height, long width, long batch, long threads, long rows_per_worker) {
    lru_tall t = lru_tall_layout(height, width, batch, DW3_CHUNK);
    return 2 * t.buffer_count + threads * (3 * t.buffer_count + rows_per_worker);
}

void lru_dw3_prepare(float *scratch, long height, long width, long batch) {
    lru_tall t = lru_tall_layout(height, width, batch, DW3_CHUNK);
    lru_tall_masks(&t, scratch, scratch + t.buffer_count);
}

lru_dw3 lru_dw3_worker(float *scratch, long height, long width, long batch, long mult, long threads, long worker) {
    lru_dw3 k;
    k.tall = lru_tall_layout(height, width, batch, DW3_CHUNK);
    k.mult = mult; k.batch = batch; k.hw = height * width; k.row = batch * k.hw;
    long size = k.tall.buffer_count;
    k.left = scratch; k.right = scratch + size;
    float *buffer = scratch + (2 + 3 * worker) * size;
    k.pin = buffer + LRU_TALL_ORIGIN; k.pout = buffer + size + LRU_TALL_ORIGIN; k.acc = buffer + 2 * size;
    k.rows = scratch + (2 + 3 * threads) * size + worker * mult * batch * k.hw;
    if (!lru_tall_is_square4(&k.tall)) memset(buffer, 0, 2 * size * sizeof(float));   // separators and guards stay zero
    return k;
}

lru_tile lru_tile_plan(long planes, long height, long width, long batch, long parallel_tiles, long cache_budget) {
    lru_tile t;
    t.planes = planes; t.height = height; t.width = width; t.plane = height * width;
    t.group_in = planes / 8;
    long per_image = 2 * planes * height * width * (long)sizeof(float);
    long n = cache_budget / per_image;
    if (n < 1) n = 1;
    if (parallel_tiles > 0 && batch >= parallel_tiles) {
        long share = (batch + parallel_tiles - 1) / parallel_tiles;
        if (share < n) n = share;
    }
    if (batch < n) n = batch;
    t.tall = lru_tall_layout(height, width, n, DW3_CHUNK);
    t.images = t.tall.images;
    // A vector past the images, so a depthwise row's last vector never reaches the next row.
    t.ld = lru_round_lanes(t.images * t.plane) + LRU_MAX_LANES;
    t.activation_count = planes * t.ld + LRU_SLACK;
    t.depthwise_count = 2 * t.group_in * t.ld + LRU_SLACK;
    t.participant_count = 2 * t.activation_count + t.depthwise_count + t.tall.buffer_count;
    // Decided by the batch, not the tile (which depends on the thread count), so that the
    // result does not depend on the thread count either.
    t.channel_lanes = batch == 1 && height <= LRU_LANES_MAX_SIDE && width <= LRU_LANES_MAX_SIDE;
    return t;
}

long lru_maxpool_argmax_row_count(long wo) { return lru_argmax_row_count(wo); }

/// The larger of two values, NaN if either is (PyTorch's max pooling propagates NaN).
static inline float max_nan(float a, float b) { return (b > a) != (b != b) ? b : a; }

/// Any width, in two passes per output row that the compiler vectorises: the vertical maximum
/// of the (up to) three input rows into row[1...w], then out[ox] = max(row[2ox], row[2ox+1],
/// row[2ox+2]). The edges are clamped (row[0] = row[1], row[w+1] = row[w]) instead of padded:
/// repeating an edge value leaves a maximum unchanged.
void lru_maxpool3s2(float *dst, const float *src, long h, long w, long ho, long wo, float *row) {
    for (long oy = 0; oy < ho; oy++) {
        long y = 2 * oy;
        const float *r1 = src + y * w, *r0 = y > 0 ? r1 - w : r1, *r2 = y + 1 < h ? r1 + w : r1;
        for (long x = 0; x < w; x++) row[1 + x] = max_nan(max_nan(r0[x], r1[x]), r2[x]);
        row[0] = row[1]; row[w + 1] = row[w];
        float *d = dst + oy * wo;
        for (long ox = 0; ox < wo; ox++) d[ox] = max_nan(max_nan(row[2 * ox], row[2 * ox + 1]), row[2 * ox + 2]);
    }
}

// ---------------------------------------------------------------------------------------------
// Entry points.

#define LRU_KERNEL(name, params, args) void lru_##name params { T->name args; }
#define LRU_KERNEL_RETURNING(type, name, params, args) type lru_##name params { return T->name args; }
#include "lrunet_kernels.def"
#undef LRU_KERNEL
#undef LRU_KERNEL_RETURNING

void lru_tile_group(float *next, const float *res, long group, long images, const lru_tile *t,
                    const lru_iteration_weights *k, int shuffle, float *dw_rows, float *tall_buffer,
                    const float *mask_left, const float *mask_right) {
    const lru_table *table = T;
    long c0 = group * t->group_in;
    table->tile_depthwise(dw_rows, res, c0, c0, c0 + t->group_in, images, t, k, tall_buffer, mask_left, mask_right);
    table->tile_pointwise(next, res, dw_rows, group, c0, c0 + t->group_in, images, t, k, shuffle);
}
lru_dw3s2 lru_dw3s2_layout(long h, long w) {
    lru_dw3s2 L;
    L.ho = (h - 1) / 2 + 1; L.wo = (w - 1) / 2 + 1; L.pitch = L.wo + 1;
    L.plane = (L.ho + 1) * L.pitch;
    L.images = DW3S2_CHUNK / L.plane;
    if (L.images < 1) L.images = 1;
    // The sweep rounds up to whole vectors and reads a row and a column past each output.
    L.buffer = L.images * L.plane + L.pitch + 1 + 2 * LRU_MAX_LANES;
    return L;
}

long lru_dw3s2_scratch_count(long h, long w) { return 5 * lru_dw3s2_layout(h, w).buffer; }
