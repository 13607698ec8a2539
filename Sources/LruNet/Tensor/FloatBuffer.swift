/// A 64-byte-aligned, zero-initialised block of `Float`s owned by one object.
///
/// Layers allocate these once while planning and only read and write them
/// afterwards, so a steady-state forward or backward pass does not allocate them again.
/// ``slack`` floats after the end are allocated too, so a kernel may load a
/// whole vector that starts at any valid index.
package final class FloatBuffer {
    package let count: Int
    package let pointer: UnsafeMutablePointer<Float>
    static let slack = 16

    package init(count: Int) {
        precondition(count >= 0, "FloatBuffer: negative size \(count)")
        self.count = count
        let capacity = count + Self.slack
        let raw = UnsafeMutableRawPointer.allocate(byteCount: capacity * MemoryLayout<Float>.stride, alignment: 64)
        pointer = raw.bindMemory(to: Float.self, capacity: capacity)
        pointer.initialize(repeating: 0, count: capacity)
    }

    deinit { pointer.deallocate() }

    package func zero() { pointer.update(repeating: 0, count: count) }

    package var array: [Float] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
}

/// A growable pool of buffers that keeps the largest size asked for; used for
/// per-layer scratch that several layers may share.
package final class Scratch {
    package init() {}
    private(set) var buffer = FloatBuffer(count: 0)
    func reserve(_ count: Int) -> UnsafeMutablePointer<Float> {
        if buffer.count < count { buffer = FloatBuffer(count: count) }
        return buffer.pointer
    }
}
