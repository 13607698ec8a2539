import CLruNetKernels

// The few types that carry memory across threads. A parallel region's arguments are a named
// struct of these and of plain values, so the compiler checks the rest. They are Sendable by
// contract, not by construction:
// - every participant of a region reads through them, and writes (through `Rows`) only the
//   part the region gives it (channel rows, tiles, column blocks: each region says which);
// - the memory outlives the region: WorkerPool.run returns only when every participant is done.

/// Memory a region writes (each participant its own part).
package struct SharedMutable<Element>: @unchecked Sendable {
    package let base: UnsafeMutablePointer<Element>
    package init(_ base: UnsafeMutablePointer<Element>) { self.base = base }
    @inline(__always) package static func + (rows: Self, offset: Int) -> UnsafeMutablePointer<Element> { rows.base + offset }
}

/// Memory a region only reads.
package struct SharedConst<Element>: @unchecked Sendable {
    package let base: UnsafePointer<Element>
    package init(_ base: UnsafePointer<Element>) { self.base = base }
    package init(_ base: UnsafeMutablePointer<Element>) { self.base = UnsafePointer(base) }
    @inline(__always) package static func + (rows: Self, offset: Int) -> UnsafePointer<Element> { rows.base + offset }
    @inline(__always) package subscript(_ i: Int) -> Element { base[i] }
}

/// Float rows a region writes.
package typealias Rows = SharedMutable<Float>
/// Float rows a region reads.
package typealias ConstRows = SharedConst<Float>
/// Indices a region writes (max pooling's argmax).
package typealias IndexRows = SharedMutable<Int32>
/// Indices a region reads.
package typealias ConstIndexRows = SharedConst<Int32>

// The C kernels' parameter blocks hold pointers to one layer's tensors: the BatchNorm's
// statistics (each channel updated by the one participant that owns it), a tile's weights
// (read only). Same contract as above.
extension lru_bn_train: @retroactive @unchecked Sendable {}
extension lru_bn_grad: @retroactive @unchecked Sendable {}
extension lru_bn_replay: @retroactive @unchecked Sendable {}
extension lru_tile: @retroactive @unchecked Sendable {}
extension lru_iteration_weights: @retroactive @unchecked Sendable {}
