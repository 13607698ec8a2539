import Foundation

/// A process group of threads in one process: what the tests use to run K "processes" side by
/// side, each with its own network, through the same code paths as an MPI run. Sums add the
/// processes' values in rank order, so every member gets the same bits.
package final class ThreadCollectives: Collectives, @unchecked Sendable {
    /// What the members share: posted buffers and a reusable barrier.
    private final class Room: @unchecked Sendable {
        let size: Int
        let lock = NSCondition()
        var arrived = 0, generation = 0
        /// One slot per member, each written only by its member (raw memory: an array property
        /// written from several threads would be a data race).
        let posted: UnsafeMutablePointer<UnsafeRawPointer?>
        init(size: Int) {
            self.size = size
            posted = .allocate(capacity: size)
            posted.initialize(repeating: nil, count: size)
        }
        deinit { posted.deallocate() }

        func wait() {
            lock.lock()
            let g = generation
            arrived += 1
            if arrived == size { arrived = 0; generation += 1; lock.broadcast() } else { while generation == g { lock.wait() } }
            lock.unlock()
        }
    }

    package let rank: Int
    package let size: Int
    private let room: Room

    private init(rank: Int, room: Room) { self.rank = rank; self.size = room.size; self.room = room }

    /// `size` members of one group; give each to its own thread.
    package static func group(size: Int) -> [ProcessGroup] {
        let room = Room(size: size)
        return (0..<size).map { ProcessGroup(ThreadCollectives(rank: $0, room: room)) }
    }

    private func reduce<T: FloatingPoint>(_ values: UnsafeMutablePointer<T>, count: Int) {
        let own = UnsafeMutablePointer<T>.allocate(capacity: max(count, 1))
        defer { own.deallocate() }
        own.update(from: values, count: count)
        room.posted[rank] = UnsafeRawPointer(own)
        room.wait()
        let all = (0..<size).map { room.posted[$0]!.assumingMemoryBound(to: T.self) }
        for i in 0..<count {
            var s: T = all[0][i]
            for r in 1..<size { s += all[r][i] }
            values[i] = s
        }
        room.wait()      // nobody frees its copy while another still reads it
    }

    package func sum(_ values: UnsafeMutablePointer<Float>, count: Int) { reduce(values, count: count) }
    package func sum(_ values: UnsafeMutablePointer<Double>, count: Int) { reduce(values, count: count) }

    package func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int) {
        if rank == root { room.posted[root] = UnsafeRawPointer(bytes) }
        room.wait()
        if rank != root { bytes.copyMemory(from: room.posted[root]!, byteCount: count) }
        room.wait()
    }

    package func abort(code: Int32) -> Never { fatalError("a member of a thread group failed (code \(code))") }
}
