// The per-instruction-set function table behind the entry points of lrunet_kernels.h.
#ifndef LRUNET_TABLE_H
#define LRUNET_TABLE_H
#include "lrunet_kernels.h"

typedef struct {
    int lanes;
#define LRU_KERNEL(name, params, args) void (*name) params;
#define LRU_KERNEL_RETURNING(type, name, params, args) type (*name) params;
#include "lrunet_kernels.def"
#undef LRU_KERNEL
#undef LRU_KERNEL_RETURNING
} lru_table;

#define LRU_ISA_TABLE(id, suffix, name, lanes, supported) extern const lru_table lru_table_##suffix;
LRU_ISA_LIST(LRU_ISA_TABLE)
#undef LRU_ISA_TABLE

/// The active table (set on first use, changed by lru_isa_select).
const lru_table *lru_active_table(void);

#endif
