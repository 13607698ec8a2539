// Open MPI behind LruNet's process groups. Built only with the package trait `MPI`
// (`swift build -c release --traits MPI`); without it this module is empty, so the package
// builds where mpi.h is absent.
#if MPI
import CMPI
import Foundation
import LruNet

/// The MPI job this process runs in.
public enum MPIWorld {
    /// Whether a launcher (mpirun, srun with PMIx) started this process as part of a job.
    public static var launched: Bool {
        let env = ProcessInfo.processInfo.environment
        return env["OMPI_COMM_WORLD_SIZE"] != nil || env["PMIX_RANK"] != nil || env["PMI_SIZE"] != nil
    }

    /// Joins MPI_COMM_WORLD when this process was launched by mpirun; nil otherwise (a plain run
    /// stays one process and never touches MPI). Call once, from the main thread.
    public static func join() throws -> ProcessGroup? {
        guard launched else { return nil }
        var rank: Int32 = 0, size: Int32 = 0
        let rc = lru_mpi_init(&rank, &size)
        guard rc == MPI_SUCCESS else { throw MPIError.initialisation(code: rc) }
        return ProcessGroup(MPICollectives(rank: Int(rank), size: Int(size)))
    }

    /// Ends MPI after a successful run (every process must call it).
    public static func finish() { lru_mpi_finalize() }

    /// "Open MPI v4.1.4, ..." (the first line of the library's version text).
    public static var libraryVersion: String {
        var text = [CChar](repeating: 0, count: 256)
        lru_mpi_version(&text, Int32(text.count))
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

public enum MPIError: Error, CustomStringConvertible {
    case initialisation(code: Int32)
    public var description: String {
        switch self { case .initialisation(let code): return "MPI_Init_thread failed (error \(code))" }
    }
}

/// MPI_Allreduce and MPI_Bcast over MPI_COMM_WORLD. Open MPI's allreduce gives every process
/// the same bits for these sizes; the trainer checks that all hold the same weights every epoch.
final class MPICollectives: Collectives, @unchecked Sendable {
    let rank: Int
    let size: Int
    init(rank: Int, size: Int) { self.rank = rank; self.size = size }

    func sum(_ values: UnsafeMutablePointer<Float>, count: Int) { lru_mpi_sum_float(values, count) }
    func sum(_ values: UnsafeMutablePointer<Double>, count: Int) { lru_mpi_sum_double(values, count) }
    func broadcast(_ bytes: UnsafeMutableRawPointer, count: Int, root: Int) { lru_mpi_broadcast(bytes, count, Int32(root)) }
    func abort(code: Int32) -> Never {
        lru_mpi_abort(code)
        exit(code)
    }
}
#endif
