#include "alloc_counter.h"
#include <errno.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#if defined(__GLIBC__)
#include <execinfo.h>
#include <unistd.h>
#endif

static atomic_int enabled;
static atomic_uint_fast64_t count;

void lrunet_alloc_counter_start(void) { atomic_store(&count, 0); atomic_store(&enabled, 1); }
uint64_t lrunet_alloc_counter_stop(void) { atomic_store(&enabled, 0); return atomic_load(&count); }

// A sanitizer brings its own allocator (and interposes malloc itself): count nothing then.
#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer)
#define LRUNET_SANITIZED 1
#endif
#endif

#if defined(__GLIBC__) && !defined(LRUNET_SANITIZED)
// glibc's implementations under their internal names.
extern void *__libc_malloc(size_t);
extern void *__libc_calloc(size_t, size_t);
extern void *__libc_realloc(void *, size_t);
extern void *__libc_memalign(size_t, size_t);

// With LRUNET_ALLOC_TRACE set, every counted allocation prints its call stack to stderr:
// how to find what allocates.
static int tracing = -1;
static __thread int inTrace;

static inline void note(void) {
    if (!atomic_load_explicit(&enabled, memory_order_relaxed)) return;
    atomic_fetch_add_explicit(&count, 1, memory_order_relaxed);
    if (tracing < 0) tracing = getenv("LRUNET_ALLOC_TRACE") != NULL;
    if (tracing && !inTrace) {
        inTrace = 1;
        void *frames[24];
        int n = backtrace(frames, 24);
        write(2, "-- allocation\n", 14);
        backtrace_symbols_fd(frames, n, 2);
        inTrace = 0;
    }
}

int lrunet_alloc_counter_available(void) { return 1; }
void *malloc(size_t size) { note(); return __libc_malloc(size); }
void *calloc(size_t n, size_t size) { note(); return __libc_calloc(n, size); }
void *realloc(void *p, size_t size) { note(); return __libc_realloc(p, size); }
void *memalign(size_t alignment, size_t size) { note(); return __libc_memalign(alignment, size); }
void *aligned_alloc(size_t alignment, size_t size) { note(); return __libc_memalign(alignment, size); }
int posix_memalign(void **out, size_t alignment, size_t size) {
    if (alignment < sizeof(void *) || (alignment & (alignment - 1)) != 0) return EINVAL;
    note();
    void *p = __libc_memalign(alignment, size);
    if (p == NULL && size != 0) return ENOMEM;
    *out = p;
    return 0;
}
#else
int lrunet_alloc_counter_available(void) { return 0; }
#endif
