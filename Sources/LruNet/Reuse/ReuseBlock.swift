/// The paper's reused block: one depthwise 3x3 conv (`dw`, channel
/// multiplier 2) and one grouped 1x1 conv (`pw`, 8 groups) applied `n` times to
/// the block's own output, with a separate BatchNorm pair per iteration:
///
///     res = x (i = 0) or the previous iteration's output
///     y   = relu(pw_bn[i](pw(dw_bn[i](dw(res)))) + res)
///     y   = shuffle(y)                     unless i is the last iteration
///
/// The shared weights exist once. In inference each iteration asks the
/// parameter cache for them (it fetches once per pass), BatchNorm is applied as
/// a fused epilogue of the depthwise kernel, and BN + residual + ReLU as one
/// fused pass after the pointwise GEMM (tile by tile, see ReuseTile.swift). In
/// training every iteration keeps its own activations and BN statistics, runs
/// group by group (ReuseBlock+Training.swift), and both shared weight gradients
/// accumulate over all `n` iterations.
package final class ReuseBlock: Layer {
    package let name: String
    package let planes: Int
    package let expansion = 2
    package let iterations: Int
    package static let pointwiseGroups = 8
    /// Times its own parts.
    package var profileBucket: OpTimer? { nil }
    let dwWeight: ParameterRef, pwWeight: ParameterRef
    let dwBN: [BatchNormRefs], pwBN: [BatchNormRefs]
    unowned let store: ParameterStore
    let eps: Float = 1e-5, momentum: Float = 0.1
    let dwGeometry = ConvGeometry(kernel: 3, stride: 1, padding: 1)

    private(set) var shape = ActivationShape(channels: 0, batch: 0, height: 0, width: 0)
    private var pwShape: ConvShape?
    private var training = false
    // Inference scratch, reused by every iteration.
    private var dwOut = FloatBuffer(count: 0), pwOut = FloatBuffer(count: 0), carry = FloatBuffer(count: 0), spare = FloatBuffer(count: 0)
    /// Inference output: its place in the network's activation arena, or (not placed) a buffer of its own.
    private var outSlot = ArenaSlot()
    let depthwiseScratch = Scratch()
    // Tiled inference (see ReuseTile.swift): one workspace slice per participant, the lane masks,
    // each iteration's weights gathered once per pass, and the barrier for batches too small to split.
    private var tile: ReuseTile?
    /// The participants the tile workspace was sized for.
    private var tileParticipants = 1
    /// The threads the network runs this block on (its ``Threading``): the tile workspace is
    /// planned for them. A pass on more threads re-plans it first.
    package var participants = CPUBudget.threads
    private var tileScratch = FloatBuffer(count: 0), tileMasks = FloatBuffer(count: 0)
    /// Batch 1: the iterations in eight-channel pixels (ReuseLanes.swift), when the block fits.
    private var lanes: ReuseLanes?, lanesBuffer = FloatBuffer(count: 0)
    private let iterationWeights: UnsafeMutablePointer<IterationWeights>
    private let barrier = SpinBarrier()
    /// The next tile to take: tiles are handed out one at a time, so a thread that the host
    /// slows down (or a worker that wakes late) takes fewer of them.
    private let tileCounter = TileCounter()
    /// Hands out the pointwise groups of a training region.
    let groupCounter = TileCounter()
    /// Run inference tile by tile (the default). Off: layer by layer over the whole batch, the
    /// reference the tiled kernels are tested against and the path that times each op kind.
    var tiled = true
    /// The block ends in LruNet's max pool (3x3, stride 2, padding 1): built so by the inference
    /// rewrite (``FusionRewrite``) for a block the description follows with that pool.
    package let poolsOutput: Bool
    /// Whether the tiles pool as they write (the plan decides: tiled, planes at most 16 wide).
    /// The unpooled output, the largest activation of the network, then never leaves the cache.
    package private(set) var poolsInTiles = false
    /// Pooling after the last iteration, from an unpooled output the arena holds.
    private var poolsAfterIterations: Bool { poolsOutput && !poolsInTiles }
    /// The block's input is `[x, x]` along channels and only `x` is in memory: channel c is read
    /// from c mod C/2 (built so by the inference rewrite for LruNet's channel repeat before it).
    package let inputRepeatsHalf: Bool
    /// The unpooled output of a block that pools after its last iteration: its place in the arena, or its own.
    private var unpooled = ArenaSlot()
    // Training: one record per iteration; the input gradient in two buffers (an iteration reads
    // one at shuffled places while it writes the other); per-thread rows for one group (forward:
    // its normalised depthwise output; backward: that again, and its gradients).
    var saved: [IterationState] = []
    var blockInput: UnsafeMutablePointer<Float>?
    private var gradient = ArenaSlot()
    /// The two input-gradient buffers, one slot of the network's gradient arena.
    var gradIn: (UnsafeMutablePointer<Float>, UnsafeMutablePointer<Float>) {
        let p = gradient.pointer
        return (p, p + gradient.count / 2)
    }
    let groupRows = Scratch()
    /// The 1x1 weights with each group transposed, for backward's input gradient.
    let pwTransposed = Scratch()
    /// The wide training schedule's shared rows (more threads than pointwise groups only).
    let wideScratch = Scratch()
    /// The wide schedule's folded 1x1 (``FoldScratch`` for all pw channels).
    let wideFoldScratch = Scratch()
    /// Synchronised BatchNorm's pooled sums (ReuseBlock+PooledTraining.swift).
    let pooled = PooledStatistics()
    /// Per-worker op times inside the training regions, while profiling.
    let regionTimes: UnsafeMutablePointer<UInt64>

    /// Activations and batch statistics of one iteration, kept for backward. The group schedule
    /// keeps no depthwise output: backward computes it again from the iteration's input, a group
    /// at a time while the group's rows are in cache, at about the cost of writing it out and
    /// reading it back and for half the kept memory (docs/performance.md). The wide and pooled
    /// schedules keep the raw one in `dwRaw`. The normalised one is rebuilt from the raw one.
    struct IterationState {
        /// The iteration's output after ReLU: `next` is it shuffled (all but the last iteration),
        /// `y` unshuffled (the last only). Backward reads the ReLU mask from whichever exists.
        let pwRaw, y, next: FloatBuffer
        let dwMean, dwInvStd, pwMean, pwInvStd: FloatBuffer
        /// The raw depthwise output, reserved only when the wide or pooled schedule runs.
        let dwRaw: Scratch
    }

    /// - Parameters:
    ///   - name: module path (`stage1` ...), prefix of `dw.weight`, `pw.weight`, `dw_bn_list.i.*`, `pw_bn_list.i.*`.
    ///   - planes: block width; must be a multiple of 8 (the pointwise groups).
    ///   - iterations: N, how many times the block is applied (>= 1).
    package convenience init(name: String, store: ParameterStore, planes: Int, iterations: Int) {
        precondition(iterations >= 1, "ReuseBlock \(name): needs at least one iteration")
        precondition(planes % Self.pointwiseGroups == 0 && planes % 2 == 0, "ReuseBlock \(name): planes must be a multiple of 8")
        let wide = planes * 2
        let dw = store.declare("\(name).dw.weight", shape: [wide, 1, 3, 3], role: .convWeight, fanIn: 9, fanOut: wide * 9)
        let pw = store.declare("\(name).pw.weight", shape: [planes, wide / Self.pointwiseGroups, 1, 1],
                               role: .convWeight, fanIn: wide / Self.pointwiseGroups, fanOut: planes)
        self.init(name: name, store: store, planes: planes, iterations: iterations, dwWeight: dw, pwWeight: pw,
                  dwBN: (0..<iterations).map { BatchNormRefs(prefix: "\(name).dw_bn_list.\($0)", channels: wide, store: store) },
                  pwBN: (0..<iterations).map { BatchNormRefs(prefix: "\(name).pw_bn_list.\($0)", channels: planes, store: store) },
                  inputRepeatsHalf: false, poolsOutput: false)
    }

    private init(name: String, store: ParameterStore, planes: Int, iterations: Int, dwWeight: ParameterRef, pwWeight: ParameterRef,
                 dwBN: [BatchNormRefs], pwBN: [BatchNormRefs], inputRepeatsHalf: Bool, poolsOutput: Bool) {
        self.name = name; self.planes = planes; self.iterations = iterations; self.store = store
        self.dwWeight = dwWeight; self.pwWeight = pwWeight; self.dwBN = dwBN; self.pwBN = pwBN
        self.inputRepeatsHalf = inputRepeatsHalf; self.poolsOutput = poolsOutput
        iterationWeights = .allocate(capacity: iterations)
        regionTimes = .allocate(capacity: Self.pointwiseGroups * RegionTimer.kinds.count)
    }

    /// The same block over the same weights, reading its input as a channel repeat and/or
    /// pooling its output (inference only).
    package func inference(inputRepeatsHalf: Bool, poolsOutput: Bool) -> ReuseBlock {
        let block = ReuseBlock(name: name, store: store, planes: planes, iterations: iterations, dwWeight: dwWeight, pwWeight: pwWeight,
                               dwBN: dwBN, pwBN: pwBN, inputRepeatsHalf: inputRepeatsHalf, poolsOutput: poolsOutput)
        block.tiled = tiled; block.participants = participants
        return block
    }

    deinit { iterationWeights.deallocate(); regionTimes.deallocate() }

    package func plan(input: ActivationShape, training: Bool) throws -> ActivationShape {
        precondition(!training || !(inputRepeatsHalf || poolsOutput), "\(name): a fused inference layer cannot be planned for training")
        let expected = inputRepeatsHalf ? planes / 2 : planes
        guard input.channels == expected else {
            throw PlanError.channelMismatch(layer: name, expected: expected, got: input.channels)
        }
        var full = input
        full.channels = planes
        let output = poolsOutput ? ActivationShape(channels: planes, batch: input.batch, height: pooledSide(input.height),
                                                   width: pooledSide(input.width)) : full
        if full == shape && training == self.training && (training ? saved.count : outSlot.count) > 0
            && (training || tile == nil || tileParticipants == participants) { return output }
        shape = full; self.training = training
        let wide = planes * expansion, l = input.rowLength
        pwShape = ConvShape(inChannels: wide, outChannels: planes, groups: Self.pointwiseGroups,
                            geometry: ConvGeometry(kernel: 1), batch: input.batch, height: input.height, width: input.width)
        if training {
            outSlot.reset(count: 0)     // the last iteration's own buffer is the block's output
            dwOut = FloatBuffer(count: 0); pwOut = dwOut; carry = dwOut; spare = dwOut
            tile = nil; tileScratch = dwOut; tileMasks = dwOut
            saved = (0..<iterations).map { i in
                IterationState(pwRaw: FloatBuffer(count: planes * l), y: FloatBuffer(count: i == iterations - 1 ? planes * l : 0),
                               next: FloatBuffer(count: i == iterations - 1 ? 0 : planes * l),
                               dwMean: FloatBuffer(count: wide), dwInvStd: FloatBuffer(count: wide),
                               pwMean: FloatBuffer(count: planes), pwInvStd: FloatBuffer(count: planes), dwRaw: Scratch())
            }
            gradient.reset(count: 2 * planes * l)
            _ = groupSchedule(workers: min(participants, Self.pointwiseGroups), rowsPerThread: Self.backwardGroupRows * groupWidth)
        } else {
            saved = []
            gradient.reset(count: 0)
            outSlot.reset(count: output.count)
            // The layer-by-layer buffers (several times a stage's activations) only if that path runs.
            dwOut = FloatBuffer(count: 0); pwOut = dwOut; carry = dwOut; spare = dwOut
            planTiles()
        }
        poolsInTiles = poolsOutput && tile != nil && input.width <= 16
        unpooled.reset(count: poolsOutput ? planes * full.rowLength : 0)
        return output
    }

    package func forward(_ input: UnsafeMutablePointer<Float>, _ context: RunContext) -> UnsafeMutablePointer<Float> {
        if context.training { return forwardTraining(input, context) }
        if tiled, tile != nil { return context.timed(.reuseBlock) { forwardTiled(input, context) } }
        return forwardInference(input, context)
    }

    /// Sizes the tile workspace for every participant the worker pool can run (and, past 8 of
    /// them, the depthwise rows the wide schedule shares).
    private func planTiles() {
        guard planes % (4 * ReuseTile.groups) == 0 else { tile = nil; return }   // the 1x1 kernel takes rows 4 at a time
        let t = ReuseTile(planes: planes, height: shape.height, width: shape.width, batch: shape.batch,
                          parallelTiles: participants)
        tile = t
        tileParticipants = participants
        let shared = participants > ReuseTile.groups ? t.allDepthwiseCount : 0
        tileScratch = FloatBuffer(count: participants * t.participantCount + shared)
        tileMasks = FloatBuffer(count: 2 * t.tall.bufferCount)
        t.tall.prepareMasks(in: tileMasks.pointer)
        lanes = nil
        if ReuseLanes.fits(planes: planes, height: shape.height, width: shape.width, batch: shape.batch, iterations: iterations) {
            lanesBuffer = FloatBuffer(count: ReuseLanes.count(planes: planes, height: shape.height, width: shape.width,
                                                              participants: participants))
            lanes = ReuseLanes(lanesBuffer.pointer, planes: planes, height: shape.height, width: shape.width)
        } else {
            lanesBuffer = FloatBuffer(count: 0)
        }
    }

    /// Fills every participant's activation buffers and depthwise rows with `value` (tests: what
    /// a previous pass left there, junk columns included, must never reach an output).
    func fillTileBuffers(_ value: Float) {
        guard let t = tile else { return }
        for p in 0..<tileParticipants {
            let s = TileScratch(tileScratch.pointer, tile: t, participant: p)
            s.a.update(repeating: value, count: s.tall - s.a)
        }
        // The lanes path's scratch and packed weights too (not its states, whose borders must stay zero).
        if let l = lanes {
            let start = l.packedPointwise.base, end = lanesBuffer.pointer + lanesBuffer.count
            start.update(repeating: value, count: end - start)
        }
    }

    private func forwardTiled(_ input: UnsafeMutablePointer<Float>, _ ctx: RunContext) -> UnsafeMutablePointer<Float> {
        if ctx.threading.threads > tileParticipants {
            participants = ctx.threading.threads
            planTiles()
            if tile == nil { return forwardInference(input, ctx) }
        }
        let t = tile!, batch = shape.batch
        for i in 0..<iterations {       // the same requests as the layer-by-layer path: the cache counts them
            let d = ctx.cache.foldedBatchNorm(dwBN[i], eps: eps), p = ctx.cache.foldedBatchNorm(pwBN[i], eps: eps)
            iterationWeights[i] = IterationWeights(dw: ctx.cache.fetch(dwWeight), pw: ctx.cache.fetch(pwWeight),
                                                   dwScale: d.scale, dwShift: d.shift, pwScale: p.scale, pwShift: p.shift)
        }
        let masks = (left: ConstRows(tileMasks.pointer), right: ConstRows(tileMasks.pointer + t.tall.bufferCount))
        let width = min(ctx.threading.threads, tileParticipants)
        // Batch 1 on up to 4 threads, pairs of groups in eight-channel pixels (one thread too);
        // otherwise whole tiles, or past 8 threads on too few tiles, input channels and 1x1 row blocks.
        let inLanes = lanes != nil && width <= 4
        let pass = TiledPass(tile: t, input: ConstRows(input), inputChannels: inputRepeatsHalf ? planes / 2 : planes,
                             out: Rows(poolsAfterIterations ? unpooled.pointer : outSlot.pointer), batch: batch, iterations: iterations,
                             weights: SharedConst(iterationWeights), workspace: Rows(tileScratch.pointer),
                             sharedDepthwise: Rows(tileScratch.pointer + tileParticipants * t.participantCount), masks: masks,
                             counter: tileCounter, barrier: barrier,
                             pool: poolsInTiles ? TiledPass.Pooling(height: shape.height, width: shape.width,
                                                                   ho: pooledSide(shape.height), wo: pooledSide(shape.width)) : nil,
                             lanes: inLanes ? lanes : nil)
        RegionObserver.record(#fileID, #line, items: inLanes ? 4 : pass.tiles >= width ? pass.tiles
                                   : width > ReuseTile.groups ? planes / 4 : ReuseTile.groups, threads: width)
        if !inLanes && pass.tiles >= width {
            // Enough tiles: participants take whole tiles from the counter, no synchronisation inside.
            tileCounter.reset()
            ctx.threading.pool.run(width: min(width, pass.tiles), pass) { pass, p, _ in pass.pointee.takeTiles(participant: p) }
        } else {
            // Fewer tiles than threads (batch 1): all threads work on each tile.
            ctx.threading.pool.run(width: width, pass) { pass, p, w in pass.pointee.shareTiles(participant: p, width: w) }
        }
        if poolsAfterIterations { poolOutput(ctx) }
        return outSlot.pointer
    }

    private func forwardInference(_ input: UnsafeMutablePointer<Float>, _ ctx: RunContext) -> UnsafeMutablePointer<Float> {
        let l = shape.rowLength
        if dwOut.count != planes * expansion * l {     // first layer-by-layer pass for this shape
            dwOut = FloatBuffer(count: planes * expansion * l); pwOut = FloatBuffer(count: planes * l)
            carry = FloatBuffer(count: planes * l); spare = FloatBuffer(count: planes * l)
        }
        var res = input
        if inputRepeatsHalf {       // this path reads whole rows: make the concat for real
            concatSelfForward(spare.pointer, input, channels: planes / 2, rowLength: l, threading: ctx.threading)
            res = spare.pointer
        }
        for i in 0..<iterations {
            let last = i == iterations - 1
            let dwBNi = ctx.cache.foldedBatchNorm(dwBN[i], eps: eps)
            ctx.timed(.depthwise) { depthwiseForward(dwOut.pointer, res, ctx.cache.fetch(dwWeight), channels: planes, multiplier: expansion,
                             batch: shape.batch, height: shape.height, width: shape.width, geometry: dwGeometry,
                             scale: dwBNi.scale, shift: dwBNi.shift, scratch: depthwiseScratch, threading: ctx.threading) }
            ctx.timed(.pointwise) { convForward(pwOut.pointer, dwOut.pointer, weight: ctx.cache.fetch(pwWeight), bias: nil, shape: pwShape!,
                        columns: nil, threading: ctx.threading) }
            let pwBNi = ctx.cache.foldedBatchNorm(pwBN[i], eps: eps)
            // BN + residual + ReLU in one pass, written straight to its shuffled place (no shuffle pass).
            let y = last ? (poolsOutput ? unpooled.pointer : outSlot.pointer) : carry.pointer
            ctx.timed(.batchNorm) { channelAffine(y, pwOut.pointer, scale: pwBNi.scale, shift: pwBNi.shift, residual: res,
                                                  activation: .relu, shuffleOutput: !last, channels: planes, rowLength: l,
                                                  threading: ctx.threading) }
            if !last {
                swap(&carry, &spare)          // the next iteration reads `res` while this one's output is written elsewhere
                res = spare.pointer
            }
        }
        if poolsOutput { poolOutput(ctx) }
        return outSlot.pointer
    }

    /// LruNet's max pool from the unpooled output to the block's output.
    private func poolOutput(_ ctx: RunContext) {
        ctx.timed(.poolShuffleConcat) {
            maxPoolForward(outSlot.pointer, unpooled.pointer, argmax: nil, planes: planes * shape.batch, height: shape.height,
                           width: shape.width, geometry: Self.poolGeometry, threading: ctx.threading)
        }
    }

    /// A block that pools after its tiles holds its unpooled output in the arena until the pool has read it.
    package func trace(_ input: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        var read = input
        if poolsAfterIterations {
            read = trace.produce(count: unpooled.count, reading: [input]) { [unowned self] in
                self.unpooled.place($0)
            }
        }
        return trace.produce(count: outSlot.count, reading: [read]) { [unowned self] in self.outSlot.place($0) }
    }

    /// Both input-gradient buffers are written reading the output gradient.
    package func traceBackward(_ gradOutput: ActivationTrace.Value, _ trace: ActivationTrace) -> ActivationTrace.Value {
        trace.leaf(gradOutput, count: gradient.count) { [unowned self] in self.gradient.place($0) }
    }

    static let poolGeometry = ConvGeometry(kernel: 3, stride: 2, padding: 1)
    private func pooledSide(_ n: Int) -> Int { Self.poolGeometry.outputHeight(n) }

    /// Multiply-accumulates per image of one application of `dw` and of `pw`.
    package var macsPerIteration: (dw: Int, pw: Int) {
        let wide = planes * expansion
        return (wide * 9 * shape.plane, planes * (wide / Self.pointwiseGroups) * shape.plane)
    }

    /// Conv weights applied per pass: (shared values, values an unrolled network would hold).
    var sharedConvParameters: Int { store.entry(dwWeight).count + store.entry(pwWeight).count }

    package var summaries: [LayerSummary] {
        let m = macsPerIteration
        let bn = iterations * 2 * (planes * expansion + planes)
        return [LayerSummary(name: name,
                             op: "reuse x\(iterations): dw 3x3 \(planes)->\(planes * expansion) g\(planes), pw 1x1 \(planes * expansion)->\(planes) g8",
                             outputShape: shape, parameters: sharedConvParameters + bn,
                             macs: [.depthwise: iterations * m.dw, .pointwise: iterations * m.pw])]
    }
}
