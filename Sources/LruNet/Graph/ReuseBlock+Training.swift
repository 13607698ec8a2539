// The reused block in training: forward with batch statistics, and backward.

extension ReuseBlock {
    /// Input channels of one pointwise group, which are also its output channels.
    var groupWidth: Int { planes / Self.pointwiseGroups }
    /// Threads a group-by-group region runs on.
    func regionWidth(_ ctx: RunContext) -> Int { min(ctx.threading.threads, Self.pointwiseGroups) }

    // Training runs each iteration group by group: a pointwise group's 1x1 reads only the
    // depthwise outputs of its own input channels, and its BatchNorm + residual + ReLU only its
    // own outputs, so one thread takes a group through depthwise + BN, the 1x1 and the second
    // BN while that group's rows (a few MB at stage 1, batch 128) are still in cache, instead
    // of each op streaming the whole stage through memory. Backward likewise.
    //
    // Kept for backward: the raw depthwise output (BatchNorm's backward needs it), not the
    // normalised one. That lives in a per-thread buffer only while its group's 1x1 reads it;
    // backward rebuilds it there with one multiply-add per value for the 1x1 weight gradient.
    // The kernels are the layer kernels' per-channel parts (ReuseBlockTrainingTests).

    func forwardTraining(_ input: UnsafeMutablePointer<Float>, _ ctx: RunContext) -> UnsafeMutablePointer<Float> {
        let l = shape.rowLength, cin = groupWidth, threads = ctx.threading.threads
        let scratch = depthwiseBatchNormScratch(depthwiseScratch, multiplier: expansion, batch: shape.batch,
                                                height: shape.height, width: shape.width, threads: threads)
        let dw = ctx.cache.fetch(dwWeight), pw = ctx.cache.fetch(pwWeight)
        blockInput = input
        let rows = groupRows.reserve(regionWidth(ctx) * 4 * cin * l)
        var res = UnsafePointer(input)
        for i in 0..<iterations {
            let s = saved[i], last = i == iterations - 1
            let dwBNi = BatchNormTraining(gamma: ctx.cache.fetch(dwBN[i].weight), beta: ctx.cache.fetch(dwBN[i].bias),
                                          savedMean: s.dwMean.pointer, savedInvStd: s.dwInvStd.pointer,
                                          runningMean: store.pointer(dwBN[i].runningMean), runningVar: store.pointer(dwBN[i].runningVar),
                                          momentum: momentum, eps: eps)
            let pwBNi = BatchNormTraining(gamma: ctx.cache.fetch(pwBN[i].weight), beta: ctx.cache.fetch(pwBN[i].bias),
                                          savedMean: s.pwMean.pointer, savedInvStd: s.pwInvStd.pointer,
                                          runningMean: store.pointer(pwBN[i].runningMean), runningVar: store.pointer(pwBN[i].runningVar),
                                          momentum: momentum, eps: eps)
            let y = last ? s.y.pointer : s.next.pointer
            ctx.timedRegion(workers: regionWidth(ctx), scratch: regionTimes) { timer in
                let pass = (res, y, s.dwRaw.pointer, s.pwRaw.pointer, dw, pw, dwBNi, pwBNi, shuffle: !last, planes, cin, l,
                            shape, threads, scratch, rows, timer)
                ctx.threading.parallelItems(Self.pointwiseGroups, counter: groupCounter, pass) { args, worker, g in
                    let (res, y, dwRaw, pwRaw, dw, pw, dwBN, pwBN, shuffle, planes, cin, l, shape, threads, scratch, rows, timer) = args.pointee
                    let k = Depthwise3x3Worker(height: shape.height, width: shape.width, batch: shape.batch, multiplier: 2,
                                               threads: threads, worker: worker, scratch: scratch)
                    let dwNorm = rows + worker * 4 * cin * l     // this group's normalised depthwise rows
                    var t = timer.start()
                    let c0 = g * cin
                    for j in 0..<cin {       // depthwise + BN of the group's input channels
                        let c = c0 + j
                        k.forwardBatchNorm(dwNorm + 2 * j * l, raw: dwRaw + 2 * c * l, input: res + c * l, weight: dw + 18 * c,
                                           bn: dwBN, firstOutput: 2 * c)
                    }
                    t = timer.lap(0, worker: worker, since: t)
                    sgemm(m: cin, n: l, k: 2 * cin, pw + c0 * 2 * cin, dwNorm, pwRaw + c0 * l)
                    t = timer.lap(1, worker: worker, since: t)
                    for c in c0 ..< c0 + cin {       // BN + residual + ReLU, written to the shuffled place
                        let dest = shuffle ? shuffleDestination(c, channels: planes) : c
                        pwBN.forwardRow(y + dest * l, pwRaw + c * l, l, channel: c, residual: res + c * l, relu: true)
                    }
                    _ = timer.lap(2, worker: worker, since: t)
                }
            }
            res = UnsafePointer(y)
        }
        return saved[iterations - 1].y.pointer
    }

    public func backward(_ gradOutput: UnsafeMutablePointer<Float>, needInputGradient: Bool,
                         _ ctx: RunContext) -> UnsafeMutablePointer<Float>? {
        let l = shape.rowLength, cin = groupWidth, threads = ctx.threading.threads
        let scratch = depthwiseBatchNormScratch(depthwiseScratch, multiplier: expansion, batch: shape.batch,
                                                height: shape.height, width: shape.width, threads: threads)
        let dw = store.pointer(dwWeight), pw = store.pointer(pwWeight)
        let dwGrad = store.gradient(dwWeight), pwGrad = store.gradient(pwWeight)
        // Each thread's rows for one group (a region has at most one thread per group).
        let rows = groupRows.reserve(regionWidth(ctx) * 4 * cin * l)
        var src = UnsafePointer(gradOutput), into = gradIn.0.pointer, spare = gradIn.1.pointer
        for i in stride(from: iterations - 1, through: 0, by: -1) {
            let s = saved[i], last = i == iterations - 1
            // The ReLU mask is this iteration's saved output, shuffled like the incoming gradient.
            let mask = UnsafePointer(last ? s.y.pointer : s.next.pointer)
            let res = UnsafePointer(i == 0 ? blockInput! : saved[i - 1].next.pointer)
            let pwBNi = BatchNormGradient(gamma: store.pointer(pwBN[i].weight), savedMean: s.pwMean.pointer,
                                          savedInvStd: s.pwInvStd.pointer, gradGamma: store.gradient(pwBN[i].weight),
                                          gradBeta: store.gradient(pwBN[i].bias))
            let dwBNi = BatchNormGradient(gamma: store.pointer(dwBN[i].weight), savedMean: s.dwMean.pointer,
                                          savedInvStd: s.dwInvStd.pointer, gradGamma: store.gradient(dwBN[i].weight),
                                          gradBeta: store.gradient(dwBN[i].bias))
            let dwReplay = BatchNormReplay(gamma: store.pointer(dwBN[i].weight), beta: store.pointer(dwBN[i].bias),
                                           savedMean: s.dwMean.pointer, savedInvStd: s.dwInvStd.pointer)
            let gin: UnsafeMutablePointer<Float>? = i > 0 || needInputGradient ? into : nil
            ctx.timedRegion(workers: regionWidth(ctx), scratch: regionTimes) { timer in
                let pass = (src, mask, res, gin, UnsafePointer(s.dwRaw.pointer), UnsafePointer(s.pwRaw.pointer), dw, pw, dwGrad, pwGrad,
                            pwBNi, dwBNi, dwReplay, shuffled: !last, planes, cin, l, shape, threads, scratch, rows, timer)
                ctx.threading.parallelItems(Self.pointwiseGroups, counter: groupCounter, pass) { args, worker, g in
                    let (src, mask, res, gin, dwRaw, pwRaw, dw, pw, dwGrad, pwGrad, pwBN, dwBN, dwReplay, shuffled, planes, cin, l, shape,
                         threads, scratch, rows, timer) = args.pointee
                    let k = Depthwise3x3Worker(height: shape.height, width: shape.width, batch: shape.batch, multiplier: 2,
                                               threads: threads, worker: worker, scratch: scratch)
                    // This thread's rows for one group: the gradient at the pre-ReLU sum (also the
                    // residual's), at the pw output, and the normalised depthwise output, which the
                    // gradient at it then replaces.
                    let gy = rows + worker * 4 * cin * l, gPw = gy + cin * l, dwNorm = gPw + cin * l, gDwNorm = dwNorm
                    var t = timer.start()
                    let c0 = g * cin
                    for j in 0..<cin {
                        let c = c0 + j, at = shuffled ? shuffleDestination(c, channels: planes) : c
                        rowReLUGradient(gy + j * l, src + at * l, output: mask + at * l, l)
                        pwBN.backwardRow(gPw + j * l, dy: gy + j * l, x: pwRaw + c * l, l, channel: c)
                    }
                    for o in 0 ..< 2 * cin { dwReplay.row(dwNorm + o * l, dwRaw + (2 * c0 + o) * l, l, channel: 2 * c0 + o) }
                    t = timer.lap(2, worker: worker, since: t)
                    // dW_g += dPw_g x dwNorm_g^T;  dDwNorm_g = W_g^T x dPw_g
                    sgemm(transB: true, m: cin, n: 2 * cin, k: l, gPw, dwNorm, beta: 1, pwGrad + c0 * 2 * cin)
                    sgemm(transA: true, m: 2 * cin, n: l, k: cin, pw + c0 * 2 * cin, gPw, gDwNorm)
                    t = timer.lap(1, worker: worker, since: t)
                    for j in 0..<cin {
                        let c = c0 + j
                        k.backwardBatchNorm(gradInput: gin.map { $0 + c * l }, gradWeight: dwGrad + 18 * c, bn: dwBN,
                                            gradOutput: gDwNorm + 2 * j * l, raw: dwRaw + 2 * c * l, input: res + c * l, weight: dw + 18 * c,
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
}
