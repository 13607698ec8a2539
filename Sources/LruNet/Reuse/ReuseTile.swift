import CLruNetKernels

// The reuse block's inference, one tile of images at a time.
//
// Run layer by layer over a whole batch, every op of every iteration streams the stage's
// activations (3-12 MB at stage 1) through L3. A tile of a few images instead stays in L2 for
// all N iterations. Within an iteration the work splits by pointwise group: group g's 1x1 conv
// reads only the depthwise outputs of input channels g*C/8 ..< (g+1)*C/8, so per group the
// depthwise rows (with their BN) are computed into a per-thread buffer (16 to 62 KB) and
// consumed at once by a register-blocked 1x1 kernel whose epilogue applies BN, adds the
// residual, takes the ReLU and writes the row to its place after the channel shuffle (the C
// kernels of Sources/CLruNetKernels/body_tile.h). The shared weights are read from their one
// copy by every group of every iteration of every tile.
//
// Tile buffers are CNHW with `images` images per row, rows at stride `ld` (whole vectors and a
// vector of padding). Columns past the images' values hold finite junk that no real column reads.

/// The layout of a reuse block's tile workspace.
typealias ReuseTile = lru_tile

extension lru_tile {
    static let groups = 8
    /// Target bytes of a tile's two activation buffers: about one 512 KB L2 (measured best of 128 KB-1 MB).
    static let cacheBudget = 512 * 1024

    /// - Parameter parallelTiles: how many tiles there should at least be (one per thread), if the batch allows.
    init(planes: Int, height: Int, width: Int, batch: Int, parallelTiles: Int) {
        self = lru_tile_plan(planes, height, width, batch, parallelTiles, Self.cacheBudget)
    }

    var groupIn: Int { group_in }
    var participantCount: Int { participant_count }
    /// Floats of the depthwise rows of all groups at once (the wide schedule's shared buffer).
    var allDepthwiseCount: Int { 2 * planes * ld + Int(LRU_SLACK) }
}

/// One participant's slices of the tile workspace.
struct TileScratch {
    let a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>
    let dw: UnsafeMutablePointer<Float>, tall: UnsafeMutablePointer<Float>

    init(_ base: UnsafeMutablePointer<Float>, tile t: ReuseTile, participant p: Int) {
        a = base + p * t.participant_count
        b = a + t.activation_count
        dw = b + t.activation_count
        tall = dw + t.depthwise_count
    }
}

/// The per-iteration parameters of one application of the block.
typealias IterationWeights = lru_iteration_weights

extension lru_iteration_weights {
    init(dw: UnsafePointer<Float>, pw: UnsafePointer<Float>, dwScale: UnsafePointer<Float>, dwShift: UnsafePointer<Float>,
         pwScale: UnsafePointer<Float>, pwShift: UnsafePointer<Float>) {
        self.init(dw: dw, pw: pw, dw_scale: dwScale, dw_shift: dwShift, pw_scale: pwScale, pw_shift: pwShift)
    }
}

/// One tiled inference pass of a block over a batch: what every participant needs, passed to
/// the worker pool by value (its region bodies capture nothing, so a pass allocates nothing).
struct TiledPass: Sendable {
    let tile: ReuseTile
    let input: ConstRows
    /// Channels the input has in memory: the planes, or half of them when the input is `[x, x]`
    /// held as `x` (channel c then reads c mod inputChannels).
    let inputChannels: Int
    /// Each participant writes its own tiles' images (or, sharing a tile, its own channels).
    let out: Rows
    let batch: Int, iterations: Int
    /// Each iteration's weights and folded BN.
    let weights: SharedConst<IterationWeights>
    /// The participants' slices (``TileScratch``), each its own.
    let workspace: Rows
    /// Depthwise rows of every group, shared by the participants of the wide schedule (each
    /// writes its own input channels' rows between two barriers).
    let sharedDepthwise: Rows
    let masks: (left: ConstRows, right: ConstRows)
    let counter: TileCounter, barrier: SpinBarrier
    /// When set, the output is max-pooled (3x3, stride 2, padding 1) as it is written.
    let pool: Pooling?
    /// Set at batch 1 on up to 4 threads: the iterations in eight-channel pixels (ReuseLanes.swift).
    let lanes: ReuseLanes?

    struct Pooling: Sendable { let height: Int, width: Int, ho: Int, wo: Int }

    var tiles: Int { (batch + tile.images - 1) / tile.images }

    /// Participant `p` takes whole tiles from the shared counter until none are left.
    func takeTiles(participant p: Int) {
        let s = TileScratch(workspace.base, tile: tile, participant: p)
        while case let index = counter.take(), index < tiles {
            let n0 = index * tile.images, count = min(tile.images, batch - n0)
            gather(s.a, n0: n0, count: count, channels: 0..<tile.planes)
            var res = s.a, next = s.b
            for i in 0..<iterations {
                withUnsafePointer(to: tile) { t in withUnsafePointer(to: weights[i]) { k in
                    for g in 0..<ReuseTile.groups {
                        lru_tile_group(next, res, g, count, t, k, i < iterations - 1 ? 1 : 0, s.dw, s.tall, masks.left.base, masks.right.base)
                    }
                } }
                swap(&res, &next)
            }
            scatter(res, n0: n0, count: count, channels: 0..<tile.planes)
        }
    }

    /// Fewer tiles than participants (batch 1, or a small batch on many cores): all `w`
    /// participants work on each tile in turn, with a barrier after each step.
    ///
    /// Up to 8 participants split each iteration by pointwise group (participant p takes every
    /// w-th group). More than 8 split it in two steps instead, so no thread idles: the
    /// depthwise rows of all groups by input channel into a shared buffer, then the 1x1 rows
    /// (4 at a time) with their epilogues.
    func shareTiles(participant p: Int, width w: Int) {
        let s = TileScratch(workspace.base, tile: tile, participant: p), shared = TileScratch(workspace.base, tile: tile, participant: 0)
        if let lanes {
            let blocks = tile.planes / 8, mine = 8 * (blocks * p / w) ..< 8 * (blocks * (p + 1) / w)
            gather(shared.a, n0: 0, count: 1, channels: mine)
            lanes.run(rows: shared.a, ld: tile.ld, weights: weights, iterations: iterations, participant: p, width: w, barrier: barrier)
            scatter(shared.a, n0: 0, count: 1, channels: mine)
            return
        }
        let mine = tile.planes * p / w ..< tile.planes * (p + 1) / w
        for index in 0..<tiles {
            let n0 = index * tile.images, count = min(tile.images, batch - n0)
            gather(shared.a, n0: n0, count: count, channels: mine)
            barrier.wait(width: w)
            var res = shared.a, next = shared.b
            for i in 0..<iterations {
                let shuffle: Int32 = i < iterations - 1 ? 1 : 0
                withUnsafePointer(to: tile) { t in withUnsafePointer(to: weights[i]) { k in
                    if w <= ReuseTile.groups {
                        for g in stride(from: p, to: ReuseTile.groups, by: w) {
                            lru_tile_group(next, res, g, count, t, k, shuffle, s.dw, s.tall, masks.left.base, masks.right.base)
                        }
                    } else {
                        lru_tile_depthwise(sharedDepthwise.base, res, 0, mine.lowerBound, mine.upperBound, count, t, k, s.tall,
                                           masks.left.base, masks.right.base)
                        barrier.wait(width: w)
                        let blocks = tile.planes / 4, rows = 4 * (blocks * p / w) ..< 4 * (blocks * (p + 1) / w)
                        var r = rows.lowerBound
                        while r < rows.upperBound {          // the part of each group within this participant's rows
                            let g = r / tile.group_in, end = min(rows.upperBound, (g + 1) * tile.group_in)
                            lru_tile_pointwise(next, res, sharedDepthwise + 2 * g * tile.group_in * tile.ld, g, r, end, count,
                                               t, k, shuffle)
                            r = end
                        }
                    }
                } }
                barrier.wait(width: w)
                swap(&res, &next)
            }
            scatter(res, n0: n0, count: count, channels: mine)
            barrier.wait(width: w)       // the next tile's gather overwrites the shared buffers
        }
    }

    /// Copies images `n0 ..< n0+count` of the block input into a tile: one row slice per channel.
    private func gather(_ dst: UnsafeMutablePointer<Float>, n0: Int, count: Int, channels: Range<Int>) {
        let hw = tile.plane
        for c in channels {
            (dst + c * tile.ld).update(from: input + ((c % inputChannels) * batch + n0) * hw, count: count * hw)
        }
    }

    /// Copies (or max-pools) the tile's result out to the block output.
    private func scatter(_ src: UnsafePointer<Float>, n0: Int, count: Int, channels: Range<Int>) {
        let hw = tile.plane
        guard let p = pool else {
            for c in channels { (out + (c * batch + n0) * hw).update(from: src + c * tile.ld, count: count * hw) }
            return
        }
        let pooled = p.ho * p.wo
        for c in channels {
            for i in 0..<count {
                lru_maxpool3s2_narrow(out + (c * batch + n0 + i) * pooled, src + c * tile.ld + i * hw, p.height, p.width, p.ho, p.wo)
            }
        }
    }
}
