/// Inference activations placed in one arena by liveness: what an inference plan needs is the
/// peak of the outputs alive at once, not their sum.
///
/// After the layers are planned, the network walks them in execution order (``Layer/trace(_:_:)``):
/// every output a layer writes is a request born at its step; every value a layer reads extends
/// that value's life to the reader's step (a residual's input lives through its body, a fork's
/// through both branches, the logits to the end). Requests are then placed first-fit by offset,
/// a place reused once its value is dead, and each layer is bound to its place. Training plans
/// keep every output (backward reads them) and do not use the arena.
package final class ActivationTrace {
    /// A value flowing through the plan: the request holding it, or nil for the network's input.
    package typealias Value = Int?

    struct Request {
        let count: Int
        let born: Int
        var lastUse: Int
        let bind: (UnsafeMutablePointer<Float>) -> Void
    }
    private(set) var requests: [Request] = []
    private var step = 0

    package init() {}

    /// A layer's output of `count` floats, written after reading `inputs`.
    package func produce(count: Int, reading inputs: [Value], bind: @escaping (UnsafeMutablePointer<Float>) -> Void) -> Value {
        step += 1
        for v in inputs { use(v) }
        requests.append(Request(count: count, born: step, lastUse: step, bind: bind))
        return requests.count - 1
    }

    /// A plain layer: its output if it has one in this plan (`count` > 0), else its input passed on.
    package func leaf(_ input: Value, count: Int, bind: @escaping (UnsafeMutablePointer<Float>) -> Void) -> Value {
        count > 0 ? produce(count: count, reading: [input], bind: bind) : input
    }

    /// A step that only reads `inputs` (a layer writing into a buffer placed before it).
    package func read(_ inputs: [Value]) {
        step += 1
        for v in inputs { use(v) }
    }

    /// `value` is read at the current step (by the layer that produced last).
    package func use(_ value: Value) {
        if let i = value { requests[i].lastUse = max(requests[i].lastUse, step) }
    }

    /// `value` is read after every layer has run (the logits).
    package func useAtEnd(_ value: Value) {
        step += 1
        use(value)
    }

    /// Floats of the outputs as separate buffers (what a plan without the arena holds).
    package var separateCount: Int { requests.reduce(0) { $0 + Self.rounded($1.count) } }

    /// Each request's size with the kernels' slack, in whole 64-byte lines.
    static func rounded(_ count: Int) -> Int { (count + FloatBuffer.slack + 15) / 16 * 16 }

    /// Offsets (first fit by offset among the places free at a request's birth) and the arena's size.
    package func place() -> (offsets: [Int], count: Int) {
        var live: [(offset: Int, size: Int, lastUse: Int)] = []
        var offsets: [Int] = [], top = 0
        for r in requests {
            live.removeAll { $0.lastUse < r.born }
            live.sort { $0.offset < $1.offset }
            let size = Self.rounded(r.count)
            var offset = 0
            for l in live {
                if l.offset - offset >= size { break }
                offset = max(offset, l.offset + l.size)
            }
            live.append((offset, size, r.lastUse))
            offsets.append(offset)
            top = max(top, offset + size)
        }
        return (offsets, top)
    }
}

/// A buffer the plan's arena gives a place (an output in inference, an input gradient in
/// training), or, when nothing placed it, one its owner allocates on first use.
struct ArenaSlot {
    /// Floats the current plan needs here (0: none).
    private(set) var count = 0
    private var owned = FloatBuffer(count: 0)
    private var placed: UnsafeMutablePointer<Float>?

    /// Sizes the slot for a new plan, unplaced; `allocateNow` keeps a buffer of its own ready
    /// (training's outputs, which backward reads and no arena holds).
    mutating func reset(count: Int, allocateNow: Bool = false) {
        self.count = count
        placed = nil
        let own = allocateNow ? count : 0
        if owned.count != own { owned = FloatBuffer(count: own) }
    }

    var pointer: UnsafeMutablePointer<Float> {
        mutating get {
            if let placed { return placed }
            if owned.count != count { owned = FloatBuffer(count: count) }
            return owned.pointer
        }
    }

    /// Puts the slot at its place in the arena (its own buffer, if any, is freed).
    mutating func place(_ pointer: UnsafeMutablePointer<Float>) {
        placed = pointer
        owned = FloatBuffer(count: 0)
    }
}
