import CLruNetKernels

// The reuse block's depthwise conv: 3x3, stride 1, padding 1, channel multiplier `mult`, in
// CNHW (channel c's images are contiguous). The per-channel kernels are C
// (Sources/CLruNetKernels/body_depthwise.h): where the width fills the vectors they roll rows
// straight from the images (each input row's views loaded once for three output rows); other
// planes are copied a chunk at a time into a "tall plane", images stacked with a zero row between
// them, so the chunk is one flat vector sweep; both use two lane masks for the left and right
// edges. 4x4 planes are convolved in registers. Here: their scratch and the parallel loops over
// channels.

/// The layout of a chunk of images as one tall plane.
typealias TallPlane = lru_tall

extension lru_tall {
    init(height: Int, width: Int, batch: Int, chunkValues: Int = Depthwise3x3Worker.chunkValues) {
        self = lru_tall_layout(height, width, batch, chunkValues)
    }
    /// Floats of one tall buffer (guard, rows, slack).
    var bufferCount: Int { buffer_count }
    /// 4x4 planes skip the tall plane: they are convolved in registers.
    var square4: Bool { height == 4 && width == 4 }

    /// Writes the two lane masks at `left` and `left + bufferCount`.
    func prepareMasks(in scratch: UnsafeMutablePointer<Float>) {
        withUnsafePointer(to: self) { lru_tall_masks($0, scratch, scratch + buffer_count) }
    }
}

/// Scratch floats the 3x3 kernels need: two masks plus three tall buffers per worker, and
/// `rowsPerWorker` more per worker for the fused BatchNorm kernels (DepthwiseBatchNorm.swift).
func depthwise3x3ScratchCount(height: Int, width: Int, batch: Int, threads: Int, rowsPerWorker: Int = 0) -> Int {
    lru_dw3_scratch_count(height, width, batch, threads, rowsPerWorker)
}

/// One worker's part of a 3x3 kernel: its tall buffers, the shared lane masks, and the work on
/// one input channel. Channel c's `mult` output rows (whole batch each) are consecutive, `batch*hw`
/// apart, both in the output tensor and in the fused kernels' row scratch.
typealias Depthwise3x3Worker = lru_dw3

extension lru_dw3 {
    /// Values per chunk of images: a chunk's planes stay in L1/L2.
    static let chunkValues = 4096

    /// Worker `worker`'s view of the scratch (its tall buffers zeroed).
    init(height: Int, width: Int, batch: Int, multiplier: Int, threads: Int, worker: Int, scratch: UnsafeMutablePointer<Float>) {
        self = lru_dw3_worker(scratch, height, width, batch, multiplier, threads, worker)
    }

    /// Forward of one channel: `dst[m]` = act(conv of `input` (the channel's row) with `weight[m]`,
    /// times `scale[m]` plus `shift[m]` when given).
    @inline(__always)
    func forward(_ dst: UnsafeMutablePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                 scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?, activation: ActivationKind = .none) {
        withUnsafePointer(to: self) { lru_dw3_forward($0, dst, input, weight, scale, shift, activation.rawValue) }
    }

    /// Gradients of one channel from its output-gradient rows: `gradWeight[m]` accumulates;
    /// `gradInput` (the channel's row) is overwritten, plus `addTo` when given.
    @inline(__always)
    func backward(gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>,
                  gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                  addTo: UnsafePointer<Float>?) {
        withUnsafePointer(to: self) { lru_dw3_backward($0, gradInput, gradWeight, gradOutput, input, weight, addTo) }
    }
}

/// Same contract as ``depthwiseForward`` for the 3x3/1/1 case.
func depthwise3x3Forward(_ out: UnsafeMutablePointer<Float>, _ input: UnsafePointer<Float>,
                         _ weight: UnsafePointer<Float>, channels: Int, multiplier mult: Int,
                         batch: Int, height h: Int, width w: Int,
                         scale: UnsafePointer<Float>?, shift: UnsafePointer<Float>?, activation: ActivationKind = .none,
                         scratch: UnsafeMutablePointer<Float>, threading: Threading) {
    lru_dw3_prepare(scratch, h, w, batch)
    let pass = Depthwise3x3Pass(out: Rows(out), input: ConstRows(input), weight: ConstRows(weight),
                                scale: scale.map(ConstRows.init), shift: shift.map(ConstRows.init), activation: activation,
                                channels: channels,
                                planes: DepthwisePlanes(multiplier: mult, batch: batch, height: h, width: w,
                                                        threads: threading.threads, scratch: Rows(scratch)))
    if splitsImages(channels: channels, batch: batch, threading: threading) {
        // Each thread a share of the images.
        threading.parallelChunks(batch, minPerThread: 1, pass) { args, worker, images in
            let r = args.pointee, n = r.planes.rowLength, mult = r.planes.multiplier
            let hw = r.planes.height * r.planes.width, first = images.lowerBound * hw
            var k = r.planes.worker(worker)
            k.batch = images.count
            for c in 0..<r.channels {
                let o = c * mult
                k.forward(r.out + o * n + first, input: r.input + c * n + first, weight: r.weight + o * 9,
                          scale: r.scale.map { $0 + o }, shift: r.shift.map { $0 + o }, activation: r.activation)
            }
        }
        return
    }
    threading.parallelChunks(channels, minPerThread: 1, pass) { args, worker, range in
        let r = args.pointee, n = r.planes.rowLength, mult = r.planes.multiplier
        let k = r.planes.worker(worker)
        for c in range {
            let o = c * mult
            k.forward(r.out + o * n, input: r.input + c * n, weight: r.weight + o * 9,
                      scale: r.scale.map { $0 + o }, shift: r.shift.map { $0 + o }, activation: r.activation)
        }
    }
}

/// Whether a depthwise forward splits the images between the threads instead of the channels:
/// when there are fewer channels than threads (a one-channel stem).
func splitsImages(channels: Int, batch: Int, threading: Threading) -> Bool {
    channels < threading.threads && batch > 1
}

/// Gradients of the 3x3/1/1 depthwise conv, same contract as ``depthwiseBackward``.
func depthwise3x3Backward(gradInput: UnsafeMutablePointer<Float>?, gradWeight: UnsafeMutablePointer<Float>,
                          gradOutput: UnsafePointer<Float>, input: UnsafePointer<Float>, weight: UnsafePointer<Float>,
                          channels: Int, multiplier mult: Int, batch: Int, height h: Int, width w: Int,
                          addToInput: UnsafePointer<Float>?, scratch: UnsafeMutablePointer<Float>, threading: Threading) {
    lru_dw3_prepare(scratch, h, w, batch)
    let pass = Depthwise3x3GradientPass(gradInput: gradInput.map(Rows.init), gradWeight: Rows(gradWeight),
                                        gradOutput: ConstRows(gradOutput), input: ConstRows(input), weight: ConstRows(weight),
                                        addToInput: addToInput.map(ConstRows.init),
                                        planes: DepthwisePlanes(multiplier: mult, batch: batch, height: h, width: w,
                                                                threads: threading.threads, scratch: Rows(scratch)))
    threading.parallelChunks(channels, minPerThread: 1, pass) { args, worker, range in
        let r = args.pointee, n = r.planes.rowLength, mult = r.planes.multiplier
        let k = r.planes.worker(worker)
        for c in range {
            let o = c * mult
            k.backward(gradInput: r.gradInput.map { $0 + c * n }, gradWeight: r.gradWeight + o * 9,
                       gradOutput: r.gradOutput + o * n, input: r.input + c * n, weight: r.weight + o * 9,
                       addTo: r.addToInput.map { $0 + c * n })
        }
    }
}

/// What every 3x3 depthwise region shares: the planes' shape and the scratch, of which each
/// worker uses its own tall buffers (and rows).
struct DepthwisePlanes: Sendable {
    let multiplier: Int, batch: Int, height: Int, width: Int, threads: Int
    let scratch: Rows
    /// Values of one channel's row (the whole batch).
    var rowLength: Int { batch * height * width }
    func worker(_ worker: Int) -> Depthwise3x3Worker {
        Depthwise3x3Worker(height: height, width: width, batch: batch, multiplier: multiplier, threads: threads,
                           worker: worker, scratch: scratch.base)
    }
}

/// Each thread its own input channels and their `multiplier` output rows.
private struct Depthwise3x3Pass: Sendable {
    let out: Rows, input: ConstRows, weight: ConstRows, scale: ConstRows?, shift: ConstRows?
    let activation: ActivationKind
    let channels: Int
    let planes: DepthwisePlanes
}

/// Each thread its own input channels: their input-gradient rows and weight gradients.
private struct Depthwise3x3GradientPass: Sendable {
    let gradInput: Rows?, gradWeight: Rows
    let gradOutput: ConstRows, input: ConstRows, weight: ConstRows, addToInput: ConstRows?
    let planes: DepthwisePlanes
}
