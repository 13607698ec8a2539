// The portable path: what every x86-64 (SSE2) or other CPU runs, in its 4-lane registers.
// No FMA: a multiply and an add.
#include <stdint.h>
#include "table.h"
#include "layout.h"

#define LRU_VW 4
#define LRU_FMA 0
#define LRU_SUFFIX baseline
#include "body.h"
