// AVX2 + FMA, 8 lanes and 16 registers.
#include <stdint.h>
#include "table.h"
#include "layout.h"

#if defined(__x86_64__)
#pragma clang attribute push(__attribute__((target("avx,avx2,fma"))), apply_to = function)
#define LRU_VW 8
#define LRU_FMA 1
#define LRU_SUFFIX avx2
#include "body.h"
#pragma clang attribute pop
#else
const lru_table lru_table_avx2 = {0};   // not x86-64: never supported, never selected
#endif
