import CLruNetKernels

// The reused block at batch 1 with eight channels in the vector lanes (NCHWc8).
//
// At batch 1 a stage's planes are 4x4 to 14x14: too short for vectors along a row, so the tile
// path (ReuseTile.swift) turns each group's input into eight-channel pixels for the depthwise
// and back into rows for the 1x1, two transposes per channel block per iteration, which cost
// more than the depthwise's multiply-adds. Here the activations stay eight-channel pixels for
// all N iterations (zero-bordered planes, so the depthwise needs no masks), the 1x1 makes output
// vectors of eight channels from weight vectors packed once per pass, and the channel shuffle
// interleaves lanes of group g's output blocks with group g+4's (the C kernels of
// Sources/CLruNetKernels/body_lanes_block.h). Rows are transposed only entering and leaving.
//
// The participants split the iterations by pairs of pointwise groups (g, g+4), a barrier after
// each iteration; each packs the weights of the groups it runs, so packing needs no barrier.

/// The buffers of a block's batch-1 lanes path, and what a pass needs of them.
struct ReuseLanes: Sendable {
    let planes: Int, height: Int, width: Int
    /// Two states (ping-pong) of planes/8 bordered planes each; their borders stay zero.
    let state: Rows
    /// The 1x1 weights packed per group, and the depthwise taps per input block.
    let packedPointwise: Rows, depthwiseTaps: Rows
    /// Per participant: the depthwise values of a group and two groups' outputs.
    let scratch: Rows

    /// Whether a block of `planes` on `height` x `width` planes at `batch` images takes it: the
    /// weights are packed every pass, which costs about what a few iterations save, so only
    /// from `minimumIterations` on.
    static func fits(planes: Int, height: Int, width: Int, batch: Int, iterations: Int) -> Bool {
        batch == 1 && iterations >= minimumIterations && planes % 64 == 0 && planes <= 4096
            && height <= Int(LRU_LANES_MAX_SIDE) && width <= Int(LRU_LANES_MAX_SIDE)
    }
    static let minimumIterations = 4

    var blocks: Int { planes / 8 }
    var bordered: Int { (height + 2) * (width + 2) * 8 }
    /// Floats of the two states.
    static func stateCount(planes: Int, height: Int, width: Int) -> Int { 2 * (planes / 8) * (height + 2) * (width + 2) * 8 }
    static func scratchCount(planes: Int, height: Int, width: Int) -> Int { 4 * (planes / 64) * height * width * 8 }
    static func count(planes: Int, height: Int, width: Int, participants: Int) -> Int {
        stateCount(planes: planes, height: height, width: width) + planes * planes / 4 + 18 * planes
            + participants * scratchCount(planes: planes, height: height, width: width)
    }

    /// Slices of `base` (``count(planes:height:width:participants:)`` floats, zeroed once).
    init(_ base: UnsafeMutablePointer<Float>, planes: Int, height: Int, width: Int) {
        self.planes = planes; self.height = height; self.width = width
        state = Rows(base)
        packedPointwise = Rows(base + Self.stateCount(planes: planes, height: height, width: width))
        depthwiseTaps = Rows(packedPointwise.base + planes * planes / 4)
        scratch = Rows(depthwiseTaps.base + 18 * planes)
    }

    /// Participant `p` of `w`: packs its groups' weights, moves its channel blocks of `rows` (at
    /// stride `ld`) into the state, runs the iterations, and leaves the result in its blocks of `rows`.
    func run(rows: UnsafeMutablePointer<Float>, ld: Int, weights: SharedConst<IterationWeights>, iterations: Int,
             participant p: Int, width w: Int, barrier: SpinBarrier) {
        let mine = blocks * p / w ..< blocks * (p + 1) / w
        let own = scratch + p * Self.scratchCount(planes: planes, height: height, width: width)
        for g in stride(from: p, to: 4, by: w) {
            lru_lanes_block_pack(packedPointwise.base, depthwiseTaps.base, weights[0].pw, weights[0].dw, planes, g, g + 1)
            lru_lanes_block_pack(packedPointwise.base, depthwiseTaps.base, weights[0].pw, weights[0].dw, planes, g + 4, g + 5)
        }
        var x = state.base, y = state.base + blocks * bordered
        lru_lanes_block_enter(x, rows, ld, height, width, mine.lowerBound, mine.upperBound)
        barrier.wait(width: w)
        for i in 0..<iterations {
            withUnsafePointer(to: weights[i]) { k in
                for g in stride(from: p, to: 4, by: w) {
                    lru_lanes_block_pair(y, x, g, planes, height, width, packedPointwise.base, depthwiseTaps.base, k,
                                         i < iterations - 1 ? 1 : 0, own)
                }
            }
            barrier.wait(width: w)
            swap(&x, &y)
        }
        lru_lanes_block_leave(rows, ld, x, height, width, mine.lowerBound, mine.upperBound, own)
    }
}
