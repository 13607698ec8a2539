// The reused block in training: forward with batch statistics, and backward.

extension ReuseBlock {
    /// Input channels of one pointwise group, which are also its output channels.
    var groupWidth: Int { planes / Self.pointwiseGroups }
    /// Threads a group-by-group region runs on.
    func regionWidth(_ ctx: RunContext) -> Int { min(ctx.threading.threads, Self.pointwiseGroups) }
    /// More threads than pointwise groups: run each iteration in steps that split by channel
    /// and by column block instead, so that every thread has work (see ``forwardWide``).
    func runsWide(_ ctx: RunContext) -> Bool { ctx.threading.threads > Self.pointwiseGroups }

    // Up to 8 threads, training runs each iteration group by group: a pointwise group's 1x1
    // reads only the depthwise outputs of its own input channels, and its BatchNorm + residual
    // + ReLU only its own outputs, so one thread takes a group through depthwise + BN, the 1x1
    // and the second BN while that group's rows (a few MB at stage 1, batch 128) are still in
    // cache, instead of each op streaming the whole stage through memory. Backward likewise.
    //
    // Neither depthwise output is kept for backward, and the normalised one is never written:
    // the raw one lives in a per-thread buffer while its BatchNorm takes the statistics and the
    // group's 1x1 reads it, with that BatchNorm folded into the 1x1 weights (GroupGemm.swift).
    // Backward computes the raw one again from the iteration's input (kept anyway, as the
    // residual) into a per-thread buffer, group by group, and its weight gradient reads it
    // folded the same way: the same speed as keeping it, at about 40% less training memory
    // (docs/performance.md). The kernels are the layer kernels' per-channel parts
    // (ReuseBlockTrainingTests).

    /// The fused depthwise kernels' scratch for this batch and thread count.
    func trainingScratch(_ ctx: RunContext) -> UnsafeMutablePointer<Float> {
        depthwiseBatchNormScratch(depthwiseScratch, multiplier: expansion, batch: shape.batch, height: shape.height,
                                  width: shape.width, threads: ctx.threading.threads)
    }

    /// Rows of one group's width each thread of the group schedule's backward takes: the
    /// gradients at the pre-ReLU sum and at the pw output (1 each), the gradient at the
    /// normalised depthwise output (2), and the raw depthwise output (2).
    static let backwardGroupRows = 6

    /// The group schedule's per-thread buffers for `workers` threads: `rowsPerThread` channel
    /// rows each, then each thread's ``FoldScratch`` for one group.
    func groupSchedule(workers: Int, rowsPerThread: Int) -> (rows: UnsafeMutablePointer<Float>, fold: UnsafeMutablePointer<Float>) {
        let perThread = rowsPerThread * shape.rowLength
        let rows = groupRows.reserve(workers * (perThread + FoldScratch.count(channels: groupWidth, groupWidth: groupWidth)))
        return (rows, rows + workers * perThread)
    }

    /// The raw depthwise output of iteration `s` the wide and pooled schedules keep for backward.
    func keptDepthwise(_ s: IterationState) -> UnsafeMutablePointer<Float> {
        s.dwRaw.reserve(planes * expansion * shape.rowLength)
    }

    /// The BatchNorms of iteration `i` in training.
    func trainingBatchNorms(_ i: Int, _ ctx: RunContext) -> (dw: BatchNormTraining, pw: BatchNormTraining) {
        let s = saved[i]
        return (BatchNormTraining(gamma: ctx.cache.fetch(dwBN[i].weight), beta: ctx.cache.fetch(dwBN[i].bias),
                                  savedMean: s.dwMean.pointer, savedInvStd: s.dwInvStd.pointer,
                                  runningMean: store.pointer(dwBN[i].runningMean), runningVar: store.pointer(dwBN[i].runningVar),
                                  momentum: momentum, eps: eps),
                BatchNormTraining(gamma: ctx.cache.fetch(pwBN[i].weight), beta: ctx.cache.fetch(pwBN[i].bias),
                                  savedMean: s.pwMean.pointer, savedInvStd: s.pwInvStd.pointer,
                                  runningMean: store.pointer(pwBN[i].runningMean), runningVar: store.pointer(pwBN[i].runningVar),
                                  momentum: momentum, eps: eps))
    }

    func forwardTraining(_ input: UnsafeMutablePointer<Float>, _ ctx: RunContext) -> UnsafeMutablePointer<Float> {
        if let group = ctx.pooledBatchNorm { return forwardPooled(input, group: group, ctx) }
        if runsWide(ctx) { return forwardWide(input, ctx) }
        let cin = groupWidth, threads = ctx.threading.threads
        let scratch = trainingScratch(ctx)
        let dw = ctx.cache.fetch(dwWeight), pw = ctx.cache.fetch(pwWeight)
        blockInput = input
        let (rows, fold) = groupSchedule(workers: regionWidth(ctx), rowsPerThread: 2 * cin)
        var res = UnsafePointer(input)
        for i in 0..<iterations {
            let s = saved[i], last = i == iterations - 1
            let (dwBNi, pwBNi) = trainingBatchNorms(i, ctx)
            let y = last ? s.y.pointer : s.next.pointer
            ctx.timedRegion(workers: regionWidth(ctx), scratch: regionTimes) { timer in
                let pass = ForwardIteration(res: ConstRows(res), y: Rows(y), dwRaw: nil, pwRaw: Rows(s.pwRaw.pointer),
                                            dw: ConstRows(dw), pw: ConstRows(pw), dwBN: dwBNi, pwBN: pwBNi, shuffle: !last,
                                            planes: planes, groupWidth: cin, rows: Rows(rows), timer: timer,
                                            depthwise: depthwisePlanes(scratch, threads: threads), fold: Rows(fold))
                ctx.threading.parallelItems(Self.pointwiseGroups, counter: groupCounter, pass) { args, worker, g in
                    let r = args.pointee, res = r.res.base, y = r.y.base, pwRaw = r.pwRaw.base
                    let dw = r.dw.base, pw = r.pw.base, dwBN = r.dwBN, pwBN = r.pwBN, shuffle = r.shuffle, planes = r.planes
                    let cin = r.groupWidth, l = r.depthwise.rowLength, rows = r.rows.base, timer = r.timer
                    let k = r.depthwise.worker(worker)
                    // This group's raw depthwise rows, and the folded 1x1's scratch.
                    let dwRaw = rows + worker * 2 * cin * l
                    let fold = FoldScratch(r.fold!.base + worker * FoldScratch.count(channels: cin, groupWidth: cin), channels: cin,
                                           groupWidth: cin)
                    var t = timer.start()
                    let c0 = g * cin
                    for j in 0..<cin {       // depthwise + BN statistics of the group's input channels
                        let c = c0 + j
                        k.forward(dwRaw + 2 * j * l, input: res + c * l, weight: dw + 18 * c, scale: nil, shift: nil)
                        for m in 0..<2 { dwBN.statisticsRow(dwRaw + (2 * j + m) * l, l, channel: 2 * c + m) }
                    }
                    t = timer.lap(0, worker: worker, since: t)
                    dwBN.replay.affine(first: 2 * c0, count: 2 * cin, scale: fold.scale, shift: fold.shift)
                    foldPointwise(rows: cin, k: 2 * cin, pw + c0 * 2 * cin, scale: fold.scale, shift: fold.shift,
                                  into: fold.weights, bias: fold.sums)
                    fold.ones.update(repeating: 1, count: cin)
                    groupPointwiseBiased(rows: cin, k: 2 * cin, fold.weights, bias: fold.sums, ones: fold.ones, dwRaw, ldb: l,
                                         columns: 0..<l, pwRaw + c0 * l, ldc: l)
                    t = timer.lap(1, worker: worker, since: t)
                    for c in c0 ..< c0 + cin {       // BN + residual + ReLU, written to the shuffled place
                        let dest = shuffle ? shuffleDestination(c, channels: planes) : c
                        pwBN.forwardRow(y + dest * l, pwRaw + c * l, l, channel: c, residual: res + c * l, activation: .relu)
                    }
                    _ = timer.lap(2, worker: worker, since: t)
                }
            }
            res = UnsafePointer(y)
        }
        return saved[iterations - 1].y.pointer
    }

    package func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                         _ ctx: RunContext) -> UnsafeMutablePointer<Float>? {
        if let group = ctx.pooledBatchNorm { return backwardPooled(gradOutput, needInputGradient: needInputGradient, group: group, ctx) }
        if runsWide(ctx) { return backwardWide(gradOutput, needInputGradient: needInputGradient, ctx) }
        let cin = groupWidth, threads = ctx.threading.threads
        let scratch = trainingScratch(ctx)
        let dw = store.pointer(dwWeight), pw = store.pointer(pwWeight)
        let dwGrad = store.gradient(dwWeight), pwGrad = store.gradient(pwWeight), pwT = transposedPointwise()
        // Each thread's rows for one group (a region has at most one thread per group).
        let (rows, fold) = groupSchedule(workers: regionWidth(ctx), rowsPerThread: Self.backwardGroupRows * cin)
        var src = UnsafePointer(gradOutput), into = gradIn.0, spare = gradIn.1
        for i in stride(from: iterations - 1, through: 0, by: -1) {
            let s = saved[i], last = i == iterations - 1
            let (mask, res, pwBNi, dwBNi, dwReplay) = backwardState(i)
            let gin: UnsafeMutablePointer<Float>? = i > 0 || needInputGradient ? into : nil
            ctx.timedRegion(workers: regionWidth(ctx), scratch: regionTimes) { timer in
                let pass = BackwardIteration(src: ConstRows(src), mask: ConstRows(mask), res: ConstRows(res), gin: gin.map(Rows.init),
                                             dwRaw: nil, pwRaw: ConstRows(s.pwRaw.pointer),
                                             dw: ConstRows(dw), pw: ConstRows(pw), pwT: pwT.map(ConstRows.init),
                                             dwGrad: Rows(dwGrad), pwGrad: Rows(pwGrad), pwBN: pwBNi, dwBN: dwBNi, dwReplay: dwReplay, shuffled: !last, planes: planes,
                                             groupWidth: cin, rows: Rows(rows), timer: timer,
                                             depthwise: depthwisePlanes(scratch, threads: threads), fold: Rows(fold))
                ctx.threading.parallelItems(Self.pointwiseGroups, counter: groupCounter, pass) { args, worker, g in
                    let r = args.pointee, src = r.src.base, mask = r.mask.base, res = r.res.base, gin = r.gin?.base
                    let pwRaw = r.pwRaw.base, dw = r.dw.base, pw = r.pw.base, pwT = r.pwT?.base
                    let dwGrad = r.dwGrad.base, pwGrad = r.pwGrad.base, pwBN = r.pwBN, dwBN = r.dwBN, dwReplay = r.dwReplay
                    let shuffled = r.shuffled, planes = r.planes, cin = r.groupWidth, l = r.depthwise.rowLength
                    let rows = r.rows.base, timer = r.timer
                    let k = r.depthwise.worker(worker)
                    // This thread's rows for one group: the gradient at the pre-ReLU sum (also the
                    // residual's), at the pw output, at the normalised depthwise output, and the raw
                    // depthwise output, computed again; then the folded weight gradient's scratch.
                    let gy = rows + worker * ReuseBlock.backwardGroupRows * cin * l, gPw = gy + cin * l, gDwNorm = gPw + cin * l
                    let dwRaw = gDwNorm + 2 * cin * l
                    let fold = FoldScratch(r.fold!.base + worker * FoldScratch.count(channels: cin, groupWidth: cin), channels: cin,
                                           groupWidth: cin)
                    var t = timer.start()
                    let c0 = g * cin
                    for j in 0..<cin {
                        let c = c0 + j
                        k.forward(dwRaw + 2 * j * l, input: res + c * l, weight: dw + 18 * c, scale: nil, shift: nil)
                    }
                    t = timer.lap(0, worker: worker, since: t)
                    for j in 0..<cin {
                        let c = c0 + j, at = shuffled ? shuffleDestination(c, channels: planes) : c
                        fold.sums[j] = pwBN.backwardReLURow(gPw + j * l, gy: gy + j * l, g: src + at * l, output: mask + at * l,
                                                            x: pwRaw + c * l, l, channel: c)
                    }
                    dwReplay.affine(first: 2 * c0, count: 2 * cin, scale: fold.scale, shift: fold.shift)
                    t = timer.lap(2, worker: worker, since: t)
                    // dW_g += dPw_g x dwNorm_g^T (from the raw rows);  dDwNorm_g = W_g^T x dPw_g
                    groupPointwiseWeightGradientFolded(m: cin, k: 2 * cin, n: l, gPw, lda: l, dwRaw, ldb: l, scale: fold.scale,
                                                       shift: fold.shift, sums: fold.sums, pwGrad + c0 * 2 * cin,
                                                       scratch: fold.weights)
                    groupPointwiseInputGradient(cin: cin, pw + c0 * 2 * cin, transposed: pwT.map { $0 + c0 * 2 * cin }, gPw, ldg: l,
                                                columns: 0..<l, gDwNorm, ldo: l)
                    t = timer.lap(1, worker: worker, since: t)
                    for j in 0..<cin {
                        let c = c0 + j
                        k.backwardBatchNorm(gradInput: gin.map { $0 + c * l }, gradWeight: dwGrad + 18 * c, bn: dwBN,
                                            gradOutput: gDwNorm + 2 * j * l, raw: dwRaw + 2 * j * l, input: res + c * l, weight: dw + 18 * c,
                                            addTo: gy + j * l, firstOutput: 2 * c)
                    }
                    _ = timer.lap(0, worker: worker, since: t)
                }
            }
            src = UnsafePointer(into)
            swap(&into, &spare)
        }
        return needInputGradient ? UnsafeMutablePointer(mutating: src) : nil
    }

    /// What backward reads of iteration `i`: the ReLU mask (its saved output, shuffled like the
    /// incoming gradient), its input, and its BatchNorms' gradient and replay forms.
    func backwardState(_ i: Int) -> (mask: UnsafePointer<Float>, res: UnsafePointer<Float>, pw: BatchNormGradient,
                                             dw: BatchNormGradient, dwReplay: BatchNormReplay) {
        let s = saved[i], last = i == iterations - 1
        return (UnsafePointer(last ? s.y.pointer : s.next.pointer),
                UnsafePointer(i == 0 ? blockInput! : saved[i - 1].next.pointer),
                BatchNormGradient(gamma: store.pointer(pwBN[i].weight), savedMean: s.pwMean.pointer,
                                  savedInvStd: s.pwInvStd.pointer, gradGamma: store.gradient(pwBN[i].weight),
                                  gradBeta: store.gradient(pwBN[i].bias)),
                BatchNormGradient(gamma: store.pointer(dwBN[i].weight), savedMean: s.dwMean.pointer,
                                  savedInvStd: s.dwInvStd.pointer, gradGamma: store.gradient(dwBN[i].weight),
                                  gradBeta: store.gradient(dwBN[i].bias)),
                BatchNormReplay(gamma: store.pointer(dwBN[i].weight), beta: store.pointer(dwBN[i].bias),
                                savedMean: s.dwMean.pointer, savedInvStd: s.dwInvStd.pointer))
    }
}

// More threads than pointwise groups (16 to 64 cores): each iteration runs in steps, each a
// parallel region over many items, so no region is capped at 8. Forward: depthwise + BN by
// input channel into a shared buffer; the 1x1 by (group, column block); BN + residual + ReLU by
// output channel. Backward mirrors it. The per-channel and per-GEMM pieces are the same as the
// group schedule's, so both give the same results (ReuseBlockTrainingTests runs both).
extension ReuseBlock {
    /// Column blocks per group for the wide 1x1 steps: enough items for every thread.
    func columnBlocks(_ ctx: RunContext) -> Int {
        min(max(1, (ctx.threading.threads + Self.pointwiseGroups - 1) / Self.pointwiseGroups), max(1, shape.rowLength / 64))
    }

    /// The wide and pooled schedules' shared rows: the gradients at the normalised depthwise
    /// output, at the pre-ReLU sum and at the pw output.
    func wideRows() -> (gDwNorm: UnsafeMutablePointer<Float>, gy: UnsafeMutablePointer<Float>, gPw: UnsafeMutablePointer<Float>) {
        let l = shape.rowLength, wide = planes * expansion
        let base = wideScratch.reserve((wide + 2 * planes) * l)
        return (base, base + wide * l, base + (wide + planes) * l)
    }

    func forwardWide(_ input: UnsafeMutablePointer<Float>, _ ctx: RunContext) -> UnsafeMutablePointer<Float> {
        let scratch = trainingScratch(ctx)
        let weights = (dw: ctx.cache.fetch(dwWeight), pw: ctx.cache.fetch(pwWeight))
        blockInput = input
        var res = UnsafePointer(input)
        let fold = wideFold()
        for i in 0..<iterations {
            let pass = wideForwardIteration(i, input: res, weights: weights, scratch: scratch, ctx)
            ctx.timed(.depthwiseBatchNorm) {
                ctx.threading.parallelChunks(planes, minPerThread: 1, pass) { args, worker, range in
                    let r = args.pointee, res = r.res.base, dwRaw = r.dwRaw!.base, dw = r.dw.base, dwBN = r.dwBN
                    let l = r.depthwise.rowLength
                    let k = r.depthwise.worker(worker)
                    for c in range {
                        k.forward(dwRaw + 2 * c * l, input: res + c * l, weight: dw + 18 * c, scale: nil, shift: nil)
                        for m in 0..<2 { dwBN.statisticsRow(dwRaw + (2 * c + m) * l, l, channel: 2 * c + m) }
                    }
                }
                pass.dwBN.replay.affine(first: 0, count: expansion * planes, scale: fold.scale, shift: fold.shift)
                foldWide(fold, scale: fold.scale, shift: fold.shift, weights: weights.pw)
            }
            widePointwiseForward(pass, ctx)
            ctx.timed(.batchNorm) {
                ctx.threading.parallelFor(planes, pass) { args, range in
                    let r = args.pointee, res = r.res.base, y = r.y.base, pwRaw = r.pwRaw.base, pwBN = r.pwBN, shuffle = r.shuffle
                    let planes = r.planes, l = r.depthwise.rowLength
                    for c in range {
                        let dest = shuffle ? shuffleDestination(c, channels: planes) : c
                        pwBN.forwardRow(y + dest * l, pwRaw + c * l, l, channel: c, residual: res + c * l, activation: .relu)
                    }
                }
            }
            res = UnsafePointer(pass.y.base)
        }
        return saved[iterations - 1].y.pointer
    }

    func backwardWide(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                      _ ctx: RunContext) -> UnsafeMutablePointer<Float>? {
        let scratch = trainingScratch(ctx), pwT = transposedPointwise()
        let fold = wideFold()
        var src = UnsafePointer(gradOutput), into = gradIn.0, spare = gradIn.1
        for i in stride(from: iterations - 1, through: 0, by: -1) {
            let pass = wideBackwardIteration(i, gradient: src, into: i > 0 || needInputGradient ? into : nil, scratch: scratch,
                                             transposed: pwT, ctx)
            // Per channel c: the gradients at the pre-ReLU sum and the pw output, and the latter's
            // row sum (the folded weight gradient's); then the folded BatchNorm on one thread.
            ctx.timed(.batchNorm) {
                ctx.threading.parallelFor(planes, pass) { args, range in
                    let r = args.pointee, w = r.wide!, src = r.src.base, mask = r.mask.base, pwRaw = r.pwRaw.base
                    let gy = w.gy.base, gPw = w.gPw.base, pwBN = r.pwBN
                    let shuffled = r.shuffled, planes = r.planes, l = r.depthwise.rowLength
                    let sums = FoldScratch(r.fold!.base, channels: planes, groupWidth: r.groupWidth).sums
                    for c in range {
                        let at = shuffled ? shuffleDestination(c, channels: planes) : c
                        sums[c] = pwBN.backwardReLURow(gPw + c * l, gy: gy + c * l, g: src + at * l, output: mask + at * l,
                                                       x: pwRaw + c * l, l, channel: c)
                    }
                }
                pass.dwReplay.affine(first: 0, count: expansion * planes, scale: fold.scale, shift: fold.shift)
            }
            widePointwiseBackward(pass, ctx)
            // Per input channel: BN backward, then the depthwise gradients (+ the residual's).
            ctx.timed(.depthwiseBatchNorm) {
                ctx.threading.parallelChunks(planes, minPerThread: 1, pass) { args, worker, range in
                    let r = args.pointee, w = r.wide!, gin = r.gin?.base, dwGrad = r.dwGrad.base, dwBN = r.dwBN
                    let gDwNorm = w.gDwNorm.base, dwRaw = r.dwRaw!.base, res = r.res.base, dw = r.dw.base, gy = w.gy.base
                    let l = r.depthwise.rowLength
                    let k = r.depthwise.worker(worker)
                    for c in range {
                        k.backwardBatchNorm(gradInput: gin.map { $0 + c * l }, gradWeight: dwGrad + 18 * c, bn: dwBN,
                                            gradOutput: gDwNorm + 2 * c * l, raw: dwRaw + 2 * c * l, input: res + c * l,
                                            weight: dw + 18 * c, addTo: gy + c * l, firstOutput: 2 * c)
                    }
                }
            }
            src = UnsafePointer(into)
            swap(&into, &spare)
        }
        return needInputGradient ? UnsafeMutablePointer(mutating: src) : nil
    }

    /// The wide and pooled schedules' shared ``FoldScratch`` (all pw channels).
    func wideFold() -> FoldScratch {
        FoldScratch(wideFoldScratch.reserve(FoldScratch.count(channels: planes, groupWidth: groupWidth)), channels: planes,
                    groupWidth: groupWidth)
    }

    /// The depthwise BatchNorm (`scale`, `shift`: all its channels) folded into every group's
    /// 1x1 weights (GroupGemm.swift), on one thread.
    func foldWide(_ fold: FoldScratch, scale: UnsafePointer<Float>, shift: UnsafePointer<Float>, weights pw: UnsafePointer<Float>) {
        let cin = groupWidth
        for g in 0..<Self.pointwiseGroups {
            foldPointwise(rows: cin, k: 2 * cin, pw + g * cin * 2 * cin, scale: scale + 2 * g * cin, shift: shift + 2 * g * cin,
                          into: fold.weights + g * cin * 2 * cin, bias: fold.sums + g * cin)
        }
        fold.ones.update(repeating: 1, count: planes)
    }

    /// The wide (and pooled) schedules' arguments for iteration `i` forward, from its input and
    /// the shared weights (fetched once per pass): the 1x1 reads the raw depthwise rows with the
    /// BatchNorm folded in ``wideFold()``.
    func wideForwardIteration(_ i: Int, input res: UnsafePointer<Float>, weights: (dw: UnsafePointer<Float>, pw: UnsafePointer<Float>),
                              scratch: UnsafeMutablePointer<Float>, _ ctx: RunContext) -> ForwardIteration {
        let s = saved[i], last = i == iterations - 1
        let (dwBNi, pwBNi) = trainingBatchNorms(i, ctx)
        let dwRaw = keptDepthwise(s)
        return ForwardIteration(res: ConstRows(res), y: Rows(last ? s.y.pointer : s.next.pointer), dwRaw: Rows(dwRaw),
                                pwRaw: Rows(s.pwRaw.pointer), dw: ConstRows(weights.dw), pw: ConstRows(weights.pw),
                                dwBN: dwBNi, pwBN: pwBNi, shuffle: !last, planes: planes, groupWidth: groupWidth,
                                rows: Rows(dwRaw), timer: RegionTimer(slots: nil),
                                depthwise: depthwisePlanes(scratch, threads: ctx.threading.threads),
                                fold: Rows(wideFold().scale), columnBlocks: columnBlocks(ctx))
    }

    /// The wide (and pooled) schedules' arguments for iteration `i` backward, from the gradient
    /// at its output; `gin` receives the gradient at its input (nil: not needed).
    /// `transposed` is ``transposedPointwise()``, made once per backward pass.
    func wideBackwardIteration(_ i: Int, gradient src: UnsafePointer<Float>, into gin: UnsafeMutablePointer<Float>?,
                               scratch: UnsafeMutablePointer<Float>, transposed: UnsafePointer<Float>?,
                               _ ctx: RunContext) -> BackwardIteration {
        let s = saved[i], last = i == iterations - 1
        let (mask, res, pwBNi, dwBNi, dwReplay) = backwardState(i)
        let (gDwNorm, gy, gPw) = wideRows(), dwRaw = keptDepthwise(s)
        return BackwardIteration(src: ConstRows(src), mask: ConstRows(mask), res: ConstRows(res), gin: gin.map(Rows.init),
                                 dwRaw: ConstRows(dwRaw), pwRaw: ConstRows(s.pwRaw.pointer),
                                 dw: ConstRows(store.pointer(dwWeight)), pw: ConstRows(store.pointer(pwWeight)),
                                 pwT: transposed.map(ConstRows.init), dwGrad: Rows(store.gradient(dwWeight)), pwGrad: Rows(store.gradient(pwWeight)),
                                 pwBN: pwBNi, dwBN: dwBNi, dwReplay: dwReplay, shuffled: !last, planes: planes,
                                 groupWidth: groupWidth, rows: Rows(dwRaw), timer: RegionTimer(slots: nil),
                                 depthwise: depthwisePlanes(scratch, threads: ctx.threading.threads),
                                 fold: Rows(wideFold().scale),
                                 wide: WideRows(gDwNorm: Rows(gDwNorm), gy: Rows(gy), gPw: Rows(gPw), columnBlocks: columnBlocks(ctx)))
    }

    /// The wide schedule's 1x1 forward: pwRaw = the folded W x the raw rows + the bias, by
    /// (group, column block).
    func widePointwiseForward(_ pass: ForwardIteration, _ ctx: RunContext) {
        ctx.timed(.pointwise) {
            ctx.threading.parallelFor(Self.pointwiseGroups * pass.columnBlocks, pass) { args, items in
                let r = args.pointee, raw = r.rows.base, pwRaw = r.pwRaw.base, cin = r.groupWidth
                let l = r.depthwise.rowLength, blocks = r.columnBlocks
                let f = FoldScratch(r.fold!.base, channels: r.planes, groupWidth: cin)
                for item in items {
                    let g = item / blocks, b = item % blocks, lo = l * b / blocks, hi = l * (b + 1) / blocks
                    groupPointwiseBiased(rows: cin, k: 2 * cin, f.weights + g * cin * 2 * cin, bias: f.sums + g * cin, ones: f.ones,
                                         raw + 2 * g * cin * l, ldb: l, columns: lo..<hi, pwRaw + g * cin * l, ldc: l)
                }
            }
        }
    }

    /// The wide schedule's 1x1 backward: dW += dPw x dwNorm^T (from the raw rows, the BatchNorm
    /// folded) and dDwNorm = W^T x dPw.
    func widePointwiseBackward(_ pass: BackwardIteration, _ ctx: RunContext) {
        // Per (group, block): rows of dW_g += dPw_g x dwNorm_g^T, columns of dDwNorm_g = W_g^T x dPw_g.
        ctx.timed(.pointwise) {
            ctx.threading.parallelFor(Self.pointwiseGroups * pass.wide!.columnBlocks, pass) { args, items in
                let r = args.pointee, w = r.wide!, gPw = w.gPw.base, raw = r.rows.base, gDwNorm = w.gDwNorm.base
                let pw = r.pw.base, pwT = r.pwT?.base, pwGrad = r.pwGrad.base, cin = r.groupWidth, l = r.depthwise.rowLength, blocks = w.columnBlocks
                let f = FoldScratch(r.fold!.base, channels: r.planes, groupWidth: cin)
                for item in items {
                    let g = item / blocks, b = item % blocks
                    let r0 = cin * b / blocks, r1 = cin * (b + 1) / blocks, lo = l * b / blocks, hi = l * (b + 1) / blocks
                    let gPwG = gPw + g * cin * l, wG = pw + g * cin * 2 * cin
                    let o0 = g * cin + r0       // this item's first row of dW (and of the scratch, its own)
                    groupPointwiseWeightGradientFolded(m: r1 - r0, k: 2 * cin, n: l, gPwG + r0 * l, lda: l, raw + 2 * g * cin * l, ldb: l,
                                                       scale: f.scale + 2 * g * cin, shift: f.shift + 2 * g * cin, sums: f.sums + o0,
                                                       pwGrad + o0 * 2 * cin, scratch: f.weights + o0 * 2 * cin)
                    groupPointwiseInputGradient(cin: cin, wG, transposed: pwT.map { $0 + g * cin * 2 * cin }, gPwG, ldg: l,
                                                columns: lo..<hi, gDwNorm + 2 * g * cin * l, ldo: l)
                }
            }
        }
    }
}

// The arguments of the training regions. Who writes what: in the group schedule each thread
// its own group's channels of `y`, `dwRaw`, `pwRaw` (and in backward `gin`, the weight
// gradients' rows and BatchNorm statistics of its channels) and its own slice of `rows`; in
// the wide schedule each step's items name their channels, rows or column blocks.
extension ReuseBlock {
    /// The 1x1 weights with each group's block transposed (the input gradient's A), in
    /// `pwTransposed`, made once per backward pass; nil when the groups are too wide for
    /// ``groupGemm``.
    func transposedPointwise() -> UnsafePointer<Float>? {
        guard runsOnGroupGemm(groupWidth: groupWidth) else { return nil }
        let t = pwTransposed.reserve(planes * 2 * groupWidth)
        transposeGroups(t, store.pointer(pwWeight), groups: Self.pointwiseGroups, rows: groupWidth, cols: 2 * groupWidth)
        return UnsafePointer(t)
    }

    func depthwisePlanes(_ scratch: UnsafeMutablePointer<Float>, threads: Int) -> DepthwisePlanes {
        DepthwisePlanes(multiplier: expansion, batch: shape.batch, height: shape.height, width: shape.width, threads: threads,
                        scratch: Rows(scratch))
    }
}

/// One training iteration forward.
struct ForwardIteration: Sendable {
    /// The raw depthwise output, kept for backward by the wide and pooled schedules only.
    let res: ConstRows, y: Rows, dwRaw: Rows?, pwRaw: Rows, dw: ConstRows, pw: ConstRows
    let dwBN: BatchNormTraining, pwBN: BatchNormTraining
    let shuffle: Bool, planes: Int, groupWidth: Int
    /// Per-thread group rows (group schedule), or the shared raw depthwise rows the 1x1 reads
    /// (wide and pooled schedules).
    let rows: Rows
    let timer: RegionTimer
    let depthwise: DepthwisePlanes
    /// The folded 1x1's scratch: per thread (group schedule) or shared (wide, pooled).
    var fold: Rows? = nil
    var columnBlocks = 1
}

/// One training iteration backward.
struct BackwardIteration: Sendable {
    let src: ConstRows, mask: ConstRows, res: ConstRows, gin: Rows?
    let dwRaw: ConstRows?, pwRaw: ConstRows, dw: ConstRows, pw: ConstRows
    /// Each group's 1x1 weights transposed, when the groups are narrow enough for ``groupGemm``.
    let pwT: ConstRows?
    let dwGrad: Rows, pwGrad: Rows
    let pwBN: BatchNormGradient, dwBN: BatchNormGradient, dwReplay: BatchNormReplay
    let shuffled: Bool, planes: Int, groupWidth: Int
    /// Per-thread group rows (group schedule), or the shared raw depthwise rows the weight
    /// gradient reads (wide and pooled schedules).
    let rows: Rows
    let timer: RegionTimer
    let depthwise: DepthwisePlanes
    /// The folded weight gradient's scratch: per thread (group schedule) or shared (wide, pooled).
    var fold: Rows? = nil
    /// The wide schedule's other shared rows.
    var wide: WideRows? = nil
}

struct WideRows: Sendable {
    let gDwNorm: Rows, gy: Rows, gPw: Rows
    let columnBlocks: Int
}

/// The folded 1x1's scratch (GroupGemm.swift) for `channels` pw output channels of groups
/// `groupWidth` wide (one group in the group schedule, all of them in the wide one): the
/// depthwise BatchNorm's `scale` and `shift` (two depthwise channels per output channel), the
/// folded `weights` (backward: the weight gradient's scratch), `sums` (forward: the bias;
/// backward: the row sums of the gradient at the pw output) and `ones` (forward sets them).
struct FoldScratch {
    let scale, shift, weights, sums, ones: UnsafeMutablePointer<Float>

    static func count(channels: Int, groupWidth: Int) -> Int { 4 * channels + 2 * channels * groupWidth + 2 * channels }

    init(_ base: UnsafeMutablePointer<Float>, channels: Int, groupWidth: Int) {
        scale = base; shift = base + 2 * channels; weights = base + 4 * channels
        sums = weights + 2 * channels * groupWidth; ones = sums + channels
    }
}
