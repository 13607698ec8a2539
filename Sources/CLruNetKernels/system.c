// System calls Swift's Glibc module does not expose (they need _GNU_SOURCE), and the
// floating-point mode of a thread.
#define _GNU_SOURCE
#include <sched.h>
#include "lrunet_kernels.h"

int lru_affinity_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}

// Denormal operands and results take microcode assists on Intel cores (tens of cycles each);
// flushed to zero they cost nothing, and a value below 1.2e-38 changes no prediction.
#if defined(__x86_64__)
#include <xmmintrin.h>
#define LRU_FTZ_DAZ 0x8040u   /* MXCSR bit 15 (flush to zero) and bit 6 (denormals are zero) */
unsigned lru_fpu_flush_denormals(void) {
    unsigned old = _mm_getcsr();
    _mm_setcsr(old | LRU_FTZ_DAZ);
    return old;
}
void lru_fpu_restore(unsigned mode) { _mm_setcsr(mode); }
int lru_fpu_flushes(void) { return (_mm_getcsr() & LRU_FTZ_DAZ) == LRU_FTZ_DAZ; }
#else
unsigned lru_fpu_flush_denormals(void) { return 0; }
void lru_fpu_restore(unsigned mode) { (void)mode; }
int lru_fpu_flushes(void) { return 0; }
#endif
