import ArgumentParser
import Foundation
import LruNet
#if MPI
import LruNetMPI
#endif

/// The processes `lrunet train` runs on: the MPI job when started by mpirun (a build with
/// `--traits MPI`), else this process alone.
enum Processes {
    static func join() throws -> ProcessGroup {
        #if MPI
        return try MPIWorld.join() ?? .single
        #else
        // K copies of a build without MPI would each train alone and overwrite each other's checkpoints.
        if let size = ProcessInfo.processInfo.environment["OMPI_COMM_WORLD_SIZE"].flatMap(Int.init), size > 1 {
            throw ValidationError("this lrunet was built without MPI, so \(size) processes would train apart: build it with 'swift build -c release --traits MPI' (docs/distributed.md)")
        }
        return .single
        #endif
    }

    /// What the run spans, for the run description.
    static func describe(_ group: ProcessGroup, batch: Int, synchronised: Bool) -> String {
        guard group.isDistributed else { return "processes: 1" }
        #if MPI
        let library = " (\(MPIWorld.libraryVersion))"
        #else
        let library = ""
        #endif
        return "processes: \(group.size)\(library), \(batch / group.size)-\((batch + group.size - 1) / group.size) images each per step, " +
               "BatchNorm statistics \(synchronised ? "synchronised over all processes" : "per process")"
    }

    /// What the collectives cost this process, printed at the end of a run.
    static func traffic(_ group: ProcessGroup) -> String {
        func line(_ name: String, _ t: CollectiveTraffic) -> String {
            String(format: "%@ %d calls, %.1f MB, %.2f s", name, t.calls, Double(t.bytes) / 1e6, t.seconds)
        }
        return "collectives on process 0: " + [line("gradient sums", group.gradientTraffic), line("BatchNorm statistics", group.batchNormTraffic),
                                               line("bookkeeping", group.bookkeepingTraffic)].joined(separator: "; ")
    }

    /// Ends MPI after a run every process finished.
    static func finish(_ group: ProcessGroup) {
        #if MPI
        if group.isDistributed { MPIWorld.finish() }
        #endif
    }
}

/// `reportingErrors` for a run over several processes: the error names this process, and the
/// whole job ends with it, so the others do not wait for it forever.
func reportingErrors(in group: ProcessGroup, _ body: () throws -> Void) throws {
    guard group.isDistributed else { return try reportingErrors(body) }
    do { try body() }
    catch {
        FileHandle.standardError.write(Data("lrunet: error: process \(group.rank) of \(group.size): \(error)\n".utf8))
        group.abort(code: 1)
    }
}
