// The AVX-512 path's 16-lane code compiled for AVX2: on a CPU without AVX-512 the tests run
// this to check the 16-lane kernels' logic (lanes, masks, blocking) against the references.
#include <stdint.h>
#include "table.h"
#include "layout.h"

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma"))), apply_to = function)
#define LRU_VW 16
#define LRU_FMA 1
#define LRU_SUFFIX avx2_w16
#include "body.h"
#pragma clang attribute pop
#else
const lru_table lru_table_avx2_w16 = {0};   // not x86-64: never supported, never selected
#endif
