import Foundation

/// A training checkpoint: `model.safetensors` (the state dict in PyTorch names,
/// loadable by `lrunet eval` and by PyTorch) and `optimizer.safetensors` (SGD
/// momentum as `momentum.<name>`, with the run's progress in its metadata).
///
/// The two files change together. ``save(_:directory:metadata:optimizerMetadata:)`` writes
/// both as `.pending` files (each atomically: temporary file, fsync, rename), then renames
/// them over the checkpoint: the model's pending file is the commit point. A process killed at
/// any moment leaves either the previous pair, or a committed pending pair that
/// ``load(into:directory:)`` (and the next save) finishes renaming. A save that fails (disk
/// full, no permission) leaves the previous checkpoint as it was.
public enum Checkpoint {
    public static let modelFile = "model.safetensors"
    public static let optimizerFile = "optimizer.safetensors"
    static let pending = ".pending"
    /// Every file a training run keeps in its directory; a killed write of any of them leaves
    /// a `<name>.tmp-<pid>` that the next save or resume removes.
    static let runFiles = [modelFile, optimizerFile, "log.csv", "curves.svg"]

    /// Creates `directory` if needed and checks that files can be written there, so a run
    /// learns at its start, not after its first epoch, that its checkpoints cannot be kept.
    public static func prepare(directory: String) throws {
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
        catch { throw IOError.writeFailed(path: directory, reason: "cannot create the directory (\(firstLine(error)))") }
        let probe = (directory as NSString).appendingPathComponent(".write-test-\(getpid())")
        guard FileManager.default.createFile(atPath: probe, contents: Data([0])) else {
            throw IOError.writeFailed(path: directory, reason: "the directory is not writable")
        }
        unlink(probe)
    }

    /// Whether `directory` holds a checkpoint (or a committed one still to be renamed).
    public static func exists(directory: String) -> Bool {
        [modelFile, modelFile + pending].contains { FileManager.default.fileExists(atPath: path(directory, $0)) }
    }

    /// Saves weights (with `extra` metadata such as epoch and test accuracy) and optimiser state.
    public static func save(_ model: Network, directory: String, metadata extra: [String: String],
                            optimizerMetadata: [String: String]) throws {
        try recover(directory: directory)
        let meta = model.metadata.merging(extra) { _, new in new }
        let store = model.parameters
        let momentum = store.entries.filter { $0.role.isTrainable }.map { e in
            ("momentum." + e.name, e.shape, UnsafeBufferPointer(start: store.momentum.pointer + e.offset, count: e.count))
        }
        let optimizerPending = path(directory, optimizerFile + pending), modelPending = path(directory, modelFile + pending)
        do {
            try SafeTensorsFile.write(tensors: momentum, metadata: optimizerMetadata, to: optimizerPending)
            CrashPoint.reach("checkpoint-optimizer-pending")
            try SafeTensorsFile.write(tensors: model.parameterBuffers(), metadata: meta, to: modelPending)   // the commit point
        } catch let IOError.writeFailed(file, reason) {
            unlink(optimizerPending)          // an uncommitted half: the previous checkpoint stays current
            throw IOError.writeFailed(path: file, reason: "\(reason); the previous checkpoint is kept")
        }
        CrashPoint.reach("checkpoint-committed")
        try recover(directory: directory)
        CrashPoint.reach("checkpoint-renamed")
    }

    /// Finishes a committed save (both pending files present, or only the model's after the
    /// optimizer's was renamed) and discards an uncommitted one.
    static func recover(directory: String) throws {
        let optimizerPending = path(directory, optimizerFile + pending), modelPending = path(directory, modelFile + pending)
        let fm = FileManager.default
        // Temporary files of writes that were killed.
        for name in (try? fm.contentsOfDirectory(atPath: directory)) ?? []
        where runFiles.contains(where: { name.hasPrefix($0 + ".") }) && name.contains(".tmp-") || name.hasPrefix(".write-test-") {
            unlink(path(directory, name))
        }
        guard fm.fileExists(atPath: modelPending) else {
            if fm.fileExists(atPath: optimizerPending) { unlink(optimizerPending) }
            return
        }
        if fm.fileExists(atPath: optimizerPending) {
            try rename(optimizerPending, to: path(directory, optimizerFile))
            CrashPoint.reach("checkpoint-optimizer-renamed")
        }
        try rename(modelPending, to: path(directory, modelFile))
        FileBytes.syncDirectory(directory)
    }

    /// Restores weights and momentum; returns both files' metadata. Nothing in the model
    /// changes unless both files are complete and agree.
    public static func load(into model: Network, directory: String) throws -> (model: [String: String], optimizer: [String: String]) {
        try recover(directory: directory)
        let weights = try SafeTensorsFile(path: path(directory, modelFile))
        let opt = try SafeTensorsFile(path: path(directory, optimizerFile))
        guard weights.metadata["epoch"] == opt.metadata["epoch"] else {
            throw IOError.malformed(path: directory, detail: "model (epoch \(quoted(weights.metadata["epoch"] ?? "?"))) and optimizer (epoch \(quoted(opt.metadata["epoch"] ?? "?"))) checkpoints disagree")
        }
        let store = model.parameters
        for e in store.entries where e.role.isTrainable {
            let name = "momentum." + e.name
            guard let info = opt.tensors[name] else { throw ModelError.missingTensor(name: name) }
            guard info.shape == e.shape else { throw ModelError.shapeMismatch(name: name, expected: e.shape, got: info.shape) }
            if let (i, v) = opt.firstNonFinite(name) { throw ModelError.nonFinite(what: "checkpoint tensor '\(name)'", index: i, value: v) }
        }
        try model.load(weights)
        for e in store.entries where e.role.isTrainable {
            try opt.read("momentum." + e.name, into: store.momentum.pointer + e.offset, count: e.count)
        }
        return (weights.metadata, opt.metadata)
    }

    private static func path(_ directory: String, _ file: String) -> String {
        (directory as NSString).appendingPathComponent(file)
    }

    private static func rename(_ from: String, to: String) throws {
        guard Foundation.rename(from, to) == 0 else { throw IOError.writeFailed(path: to, reason: String(cString: strerror(errno))) }
    }

    private static func firstLine(_ error: Error) -> String {
        ((error as NSError).localizedDescription.split(whereSeparator: \.isNewline).first).map(String.init) ?? "\(error)"
    }
}

/// Named moments of a checkpoint save (`checkpoint-committed`, `write:model.safetensors.pending`,
/// ...) at which a fault test may act through ``hook``. The library only calls it; `lrunet`
/// installs the fault tests' kill switch (Sources/LruNetCLI/CrashInjection.swift). Unset, a
/// check is one load.
package enum CrashPoint {
    /// Set once, before any checkpoint is written.
    nonisolated(unsafe) package static var hook: ((String) -> Void)?

    static func reach(_ name: String) { hook?(name) }
}
