// Counts heap allocations of the whole process while enabled.
//
// Linked into the benchmark and the tests only (never into the LruNet
// library): it defines malloc, calloc, realloc, posix_memalign, aligned_alloc
// and memalign, which the dynamic linker then resolves for every library in
// the process, and forwards each to glibc's own implementation.
#pragma once
#include <stdint.h>

/// Starts counting from zero.
void lrunet_alloc_counter_start(void);
/// Stops counting and returns the allocations made since the start.
uint64_t lrunet_alloc_counter_stop(void);
/// 1 if this build interposes the allocator (glibc), else 0 and the counts are meaningless.
int lrunet_alloc_counter_available(void);
