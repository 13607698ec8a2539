// The portable path: what every x86-64 (SSE2) or other CPU runs. No FMA: a multiply and an add.
#include <stdint.h>
#include "table.h"
#include "layout.h"

#define LRU_VW 8
#define LRU_FMA 0
#define LRU_SUFFIX baseline
#include "body.h"
