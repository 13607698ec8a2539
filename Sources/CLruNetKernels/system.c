// System calls Swift's Glibc module does not expose (they need _GNU_SOURCE), and the
// floating-point mode of a thread.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
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

// OpenBLAS (pthreads build) starts a server thread per core when it loads; an idle one polls
// with sched_yield for about 2^28 cycles before it sleeps. The engine runs OpenBLAS on one
// thread, so they never get work, but their first tenth of a second overlaps loading a model
// and planning its first pass, where they take CPU time from the engine's own workers and skew
// the per-layer thread timing. Ended once per process; OpenBLAS starts them again itself if
// anyone raises its thread count. Looked up at run time: other OpenBLAS builds lack the symbol.
static void lru_end_blas_threads(void) {
    int (*shutdown)(void) = (int (*)(void))dlsym(RTLD_DEFAULT, "blas_thread_shutdown_");
    if (shutdown) shutdown();
}

void lru_blas_idle_threads_end(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, lru_end_blas_threads);
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
