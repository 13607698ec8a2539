// The reuse block's inference, one tile of images at a time.
//
// Run layer by layer over a whole batch, every op of every iteration streams
// the stage's activations (3-12 MB at stage 1) through L3. A tile of a few
// images instead stays in L2 for all N iterations. Within an iteration the
// work splits by pointwise group: group g's 1x1 conv reads only the depthwise
// outputs of input channels g*C/8 ..< (g+1)*C/8, so per group the depthwise
// rows (with their BN) are computed into a per-thread buffer (16 to 62 KB) and
// consumed at once by a register-blocked 1x1 kernel whose epilogue applies BN, adds the
// residual, takes the ReLU and writes the row to its place after the channel
// shuffle. The shared weights are read from their one copy by every group of
// every iteration of every tile.
//
// Tile buffers are CNHW with `images` images per row, rows at stride `ld`
// (whole 8-float vectors). Columns past the images' values are padding: they
// hold finite junk that no real column ever reads.

/// The layout of a reuse block's tile workspace.
struct ReuseTile {
    let planes: Int, height: Int, width: Int
    /// Images per tile.
    let images: Int
    let tall: TallPlane

    static let groups = 8
    /// Target bytes of a tile's two activation buffers: about one 512 KB L2 (measured best of 128 KB-1 MB).
    static let cacheBudget = 512 * 1024

    /// - Parameter parallelTiles: how many tiles should exist at least (one per thread), if the batch allows.
    init(planes: Int, height: Int, width: Int, batch: Int, parallelTiles: Int) {
        self.planes = planes; self.height = height; self.width = width
        let perImage = 2 * planes * height * width * MemoryLayout<Float>.size
        var n = max(1, Self.cacheBudget / perImage)
        if batch >= parallelTiles { n = min(n, (batch + parallelTiles - 1) / parallelTiles) }
        n = min(n, batch)
        tall = TallPlane(height: height, width: width, batch: n)
        images = tall.images
    }

    var plane: Int { height * width }
    var groupIn: Int { planes / Self.groups }
    /// Row stride of tile buffers.
    var ld: Int { (images * plane + 7) & ~7 }
    /// One activation buffer; the slack takes the depthwise's last partial vector.
    var activationCount: Int { planes * ld + 16 }
    /// One group's depthwise rows (2 per input channel).
    var depthwiseCount: Int { 2 * groupIn * ld + 16 }
    /// Floats a participant needs: two activation buffers, depthwise rows, a tall plane.
    var participantCount: Int { 2 * activationCount + depthwiseCount + tall.bufferCount }
}

/// One participant's slices of the tile workspace.
struct TileScratch {
    let a: UnsafeMutablePointer<Float>, b: UnsafeMutablePointer<Float>
    let dw: UnsafeMutablePointer<Float>, tall: UnsafeMutablePointer<Float>

    init(_ base: UnsafeMutablePointer<Float>, tile t: ReuseTile, participant p: Int) {
        a = base + p * t.participantCount
        b = a + t.activationCount
        dw = b + t.activationCount
        tall = dw + t.depthwiseCount
    }
}

/// The per-iteration parameters of one application of the block.
struct IterationWeights {
    let dw: UnsafePointer<Float>, pw: UnsafePointer<Float>
    let dwScale: UnsafePointer<Float>, dwShift: UnsafePointer<Float>
    let pwScale: UnsafePointer<Float>, pwShift: UnsafePointer<Float>
}

/// One tiled inference pass of a block over a batch: what every participant needs, passed to
/// the worker pool by value (its region bodies capture nothing, so a pass allocates nothing).
struct TiledPass {
    let tile: ReuseTile
    let input: UnsafePointer<Float>
    /// Channels the input has in memory: the planes, or half of them when the input is `[x, x]`
    /// held as `x` (channel c then reads c mod inputChannels).
    let inputChannels: Int
    let out: UnsafeMutablePointer<Float>
    let batch: Int, iterations: Int
    /// Each iteration's weights and folded BN.
    let weights: UnsafePointer<IterationWeights>
    let workspace: UnsafeMutablePointer<Float>
    let masks: (left: UnsafePointer<Float>, right: UnsafePointer<Float>)
    let counter: TileCounter, barrier: SpinBarrier
    /// When set, the output is max-pooled (3x3, stride 2, padding 1) as it is written.
    let pool: Pooling?

    struct Pooling {
        let height: Int, width: Int, ho: Int, wo: Int
        let pastRight: SIMDMask<SIMD8<Int32>>
    }

    var tiles: Int { (batch + tile.images - 1) / tile.images }

    /// Participant `p` takes whole tiles from the shared counter until none are left.
    func takeTiles(participant p: Int) {
        let s = TileScratch(workspace, tile: tile, participant: p)
        while case let index = counter.take(), index < tiles {
            let n0 = index * tile.images, count = min(tile.images, batch - n0)
            gather(s.a, n0: n0, count: count, channels: 0..<tile.planes)
            let y = iterate(s, shared: s, count: count, groups: stride(from: 0, to: ReuseTile.groups, by: 1), barrierWidth: 1)
            scatter(y, n0: n0, count: count, channels: 0..<tile.planes)
        }
    }

    /// A batch smaller than the participants (batch 1): participant `p` of `w` takes every
    /// w-th pointwise group of each iteration, with a barrier between iterations.
    func shareGroups(participant p: Int, width w: Int) {
        let s = TileScratch(workspace, tile: tile, participant: p), shared = TileScratch(workspace, tile: tile, participant: 0)
        let mine = tile.planes * p / w ..< tile.planes * (p + 1) / w
        gather(shared.a, n0: 0, count: batch, channels: mine)
        barrier.wait(width: w)
        let y = iterate(s, shared: shared, count: batch, groups: stride(from: p, to: ReuseTile.groups, by: w), barrierWidth: w)
        scatter(y, n0: 0, count: batch, channels: mine)
    }

    /// All iterations on one tile held in `shared`'s activation buffers; returns the buffer with the result.
    private func iterate(_ s: TileScratch, shared: TileScratch, count: Int, groups: StrideTo<Int>,
                         barrierWidth: Int) -> UnsafePointer<Float> {
        var res = shared.a, next = shared.b
        for i in 0..<iterations {
            for g in groups {
                reuseTileGroup(next, res, group: g, images: count, tile: tile, weights: weights[i],
                               shuffle: i < iterations - 1, scratch: s, masks: masks)
            }
            barrier.wait(width: barrierWidth)
            swap(&res, &next)
        }
        return UnsafePointer(res)
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
                maxPool3x3s2Narrow(out + (c * batch + n0 + i) * pooled, src + c * tile.ld + i * hw, height: p.height,
                                   width: p.width, ho: p.ho, wo: p.wo, pastRight: p.pastRight)
            }
        }
    }
}

/// One iteration of the block for pointwise group `g` of a tile of `n` images:
/// `next[dest(c)] = relu(pwBN(pw(dwBN(dw(res))))[c] + res[c])` for the group's channels c,
/// with `dest` the channel shuffle when `shuffle`, else the identity.
/// Never inlined: inside a large caller the optimiser stops inlining the unaligned SIMD loads.
@inline(never)
func reuseTileGroup(_ next: UnsafeMutablePointer<Float>, _ res: UnsafePointer<Float>, group g: Int, images n: Int,
                    tile t: ReuseTile, weights k: IterationWeights, shuffle: Bool,
                    scratch s: TileScratch, masks: (left: UnsafePointer<Float>, right: UnsafePointer<Float>)) {
    let cin = t.groupIn, c0 = g * cin, ld = t.ld
    let pad = s.tall + TallPlane.origin
    // Depthwise (multiplier 2) with its BN, for the group's input channels. 4x4 planes are
    // convolved in registers, straight from the tile row (Depthwise4x4.swift).
    let square4 = t.tall.square4
    for ci in 0..<cin {
        let c = c0 + ci
        if !square4 { t.tall.fill(pad, from: res + c * ld, n0: 0, n: n) }
        for m in 0..<2 {
            let o = 2 * c + m, dst = s.dw + (2 * ci + m) * ld
            if square4 {
                depthwise4x4Images(dst, res + c * ld, images: n, Taps4x4(k.dw + 9 * o, scale: k.dwScale[o]),
                                   shift: k.dwShift[o])
            } else {
                depthwiseImages(dst, UnsafePointer(pad), tall: t.tall, images: n, masks: masks,
                                k.dw + 9 * o, scale: k.dwScale[o], shift: k.dwShift[o])
            }
        }
    }
    // 1x1 over the 2*cin depthwise rows, with BN + residual + ReLU (+ shuffle) on the way out.
    let epilogue = ReuseEpilogue(out: next, res: res, scale: k.pwScale, shift: k.pwShift, ld: ld, shuffle: shuffle,
                                 channels: t.planes)
    pointwiseGEMM(epilogue, UnsafePointer(s.dw), ldb: ld, weight: k.pw + c0 * 2 * cin, rows: c0 ..< c0 + cin, k: 2 * cin,
                  columns: (n * t.plane + 7) & ~7)
}

/// Depthwise 3x3 of one channel over `n` images in a tall plane, `* scale + shift`, into a
/// compact row (image i at `i * H * W`). Each image's last vector runs past it into the next
/// image's start (rewritten when that image is done) or into the row's padding.
///
/// The BN scale multiplies the nine taps once they are in registers and the shift seeds the
/// centre column's sum: the shared weights in memory stay as they are, and each output costs
/// nine FMAs plus two for the edge masks, in short dependency chains. Two vectors per step
/// give the core independent chains to overlap.
@inline(__always)
private func depthwiseImages(_ dst: UnsafeMutablePointer<Float>, _ p: UnsafePointer<Float>, tall: TallPlane, images n: Int,
                             masks: (left: UnsafePointer<Float>, right: UnsafePointer<Float>),
                             _ k: UnsafePointer<Float>, scale: Float, shift: Float) {
    let w = tall.width, hw = tall.height * w, step = tall.rowsPerImage * w
    let a0 = SIMD8(repeating: scale * k[0]), b0 = SIMD8(repeating: scale * k[1]), c0 = SIMD8(repeating: scale * k[2])
    let a1 = SIMD8(repeating: scale * k[3]), b1 = SIMD8(repeating: scale * k[4]), c1 = SIMD8(repeating: scale * k[5])
    let a2 = SIMD8(repeating: scale * k[6]), b2 = SIMD8(repeating: scale * k[7]), c2 = SIMD8(repeating: scale * k[8])
    let sh = SIMD8(repeating: shift)
    @inline(__always) func output(_ j: Int) -> SIMD8<Float> {
        let r0 = p + j, r1 = r0 + w, r2 = r1 + w
        var l = a0 * load8(r0 - 1), m = sh.addingProduct(b0, load8(r0)), r = c0 * load8(r0 + 1)
        l = l.addingProduct(a1, load8(r1 - 1)); m = m.addingProduct(b1, load8(r1)); r = r.addingProduct(c1, load8(r1 + 1))
        l = l.addingProduct(a2, load8(r2 - 1)); m = m.addingProduct(b2, load8(r2)); r = r.addingProduct(c2, load8(r2 + 1))
        return m.addingProduct(load8(masks.left + j), l).addingProduct(load8(masks.right + j), r)
    }
    for i in 0..<n {
        let d = dst + i * hw, j0 = i * step
        var q = 0
        while q + 8 < hw {
            let v0 = output(j0 + q), v1 = output(j0 + q + 8)
            store8(v0, d + q); store8(v1, d + q + 8)
            q += 16
        }
        if q < hw { store8(output(j0 + q), d + q) }
    }
}

/// The tile's 1x1 epilogue: `out[dest(c)] = relu(acc * scale[c] + shift[c] + res[c])`, with
/// `dest` the channel shuffle when `shuffle`, else the identity.
private struct ReuseEpilogue: PointwiseEpilogue {
    let out: UnsafeMutablePointer<Float>, res: UnsafePointer<Float>
    let scale: UnsafePointer<Float>, shift: UnsafePointer<Float>
    let ld: Int, shuffle: Bool, channels: Int

    @inline(__always) func store(_ acc: SIMD8<Float>, row c: Int, col: Int) {
        let dest = shuffle ? shuffleDestination(c, channels: channels) : c
        let v = load8(res + c * ld + col).addingProduct(acc, SIMD8(repeating: scale[c])) + SIMD8(repeating: shift[c])
        store8(relu8(v), out + dest * ld + col)
    }
}
