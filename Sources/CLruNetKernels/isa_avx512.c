// AVX-512 (F, BW, VL, DQ), 16 lanes and 32 registers.
#include <stdint.h>
#include "table.h"
#include "layout.h"

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma,avx512f,avx512bw,avx512vl,avx512dq,evex512"))), apply_to = function)
#define LRU_VW 16
#define LRU_FMA 1
#define LRU_SUFFIX avx512
#include "body.h"
#pragma clang attribute pop
#else
const lru_table lru_table_avx512 = {0};   // not x86-64: never supported, never selected
#endif
