// Layout arithmetic shared by the dispatcher and every instruction set's kernels. It rounds to
// the widest vector (LRU_MAX_LANES) whatever set runs, so a plan stays valid when the set changes.
#ifndef LRUNET_LAYOUT_H
#define LRUNET_LAYOUT_H
#include "lrunet_kernels.h"

static inline long lru_round_lanes(long n) { return (n + LRU_MAX_LANES - 1) & ~(long)(LRU_MAX_LANES - 1); }

/// Flat outputs a sweep computes for `n` images of a tall plane (separator rows included).
static inline long lru_tall_flat_n(const lru_tall *t, long n) { return lru_round_lanes(n * t->rows_per_image * t->width); }

/// The authors' 2-group shuffle with its half swap: out[2k] = in[C/2 + k], out[2k+1] = in[k].
/// Where input channel c lands.
static inline long lru_shuffle_destination(long c, long channels) {
    return c < channels / 2 ? 2 * c + 1 : 2 * (c - channels / 2);
}
/// 4x4 planes skip the tall plane: they are convolved in registers.
static inline int lru_tall_is_square4(const lru_tall *t) { return t->height == 4 && t->width == 4; }

/// Floats of one padded row of the argmax pooling: every vector a block of 8 outputs reads.
static inline long lru_argmax_row_count(long wo) { return 2 * ((wo + 7) & ~7L) + 16; }
#endif
