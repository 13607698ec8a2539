// System calls Swift's Glibc module does not expose (they need _GNU_SOURCE), and the
// floating-point mode of a thread.
#define _GNU_SOURCE
#include <sched.h>
#include <stdio.h>
#include <unistd.h>
#include "lrunet_kernels.h"

int lru_affinity_cpu_count(void) {
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) != 0) return 0;
    return CPU_COUNT(&set);
}

// Whether other work competes for this machine's CPUs: the 1-minute load average above the
// online CPUs plus 0.75, or more runnable tasks right now than CPUs plus one (/proc/loadavg:
// "load1 load5 load15 running/total lastpid"; this process's own busy threads count too, at
// most one per CPU). -1 when it cannot be read (not Linux).
int lru_cpus_contended(void) {
    FILE *f = fopen("/proc/loadavg", "r");
    if (!f) return -1;
    double load1 = 0;
    long running = 0, total = 0;
    int n = fscanf(f, "%lf %*f %*f %ld/%ld", &load1, &running, &total);
    fclose(f);
    if (n != 3) return -1;
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    if (cpus < 1) return -1;
    return load1 > (double)cpus + 0.75 || running > cpus + 1;
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
