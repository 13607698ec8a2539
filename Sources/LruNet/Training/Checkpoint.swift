import Foundation

/// A training checkpoint: `model.safetensors` (the state dict in PyTorch names,
/// loadable by `lrunet eval` and by PyTorch) and `optimizer.safetensors` (SGD
/// momentum as `momentum.<name>`, with the run's progress in its metadata).
/// Each file is written atomically: a crash leaves the previous checkpoint intact.
public enum Checkpoint {
    public static let modelFile = "model.safetensors"
    public static let optimizerFile = "optimizer.safetensors"

    /// Saves weights (with `extra` metadata such as epoch and test accuracy) and optimiser state.
    public static func save(_ model: Network, directory: String, metadata extra: [String: String],
                            optimizerMetadata: [String: String]) throws {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let meta = model.config.metadata.merging(extra) { _, new in new }
        let store = model.parameters
        let momentum = store.entries.filter { $0.role.isTrainable }.map { e in
            ("momentum." + e.name, e.shape, UnsafeBufferPointer(start: store.momentum.pointer + e.offset, count: e.count))
        }
        // Optimiser first: a crash between the two leaves a model file from the epoch before, which
        // `resume` detects through the epoch numbers in both files.
        try SafeTensorsFile.write(tensors: momentum, metadata: optimizerMetadata, to: (directory as NSString).appendingPathComponent(optimizerFile))
        try SafeTensorsFile.write(tensors: model.parameterBuffers(), metadata: meta, to: (directory as NSString).appendingPathComponent(modelFile))
    }

    /// Restores weights and momentum; returns both files' metadata.
    public static func load(into model: Network, directory: String) throws -> (model: [String: String], optimizer: [String: String]) {
        let weights = try SafeTensorsFile(path: (directory as NSString).appendingPathComponent(modelFile))
        let opt = try SafeTensorsFile(path: (directory as NSString).appendingPathComponent(optimizerFile))
        guard weights.metadata["epoch"] == opt.metadata["epoch"] else {
            throw IOError.malformed(path: directory, detail: "model (epoch \(weights.metadata["epoch"] ?? "?")) and optimizer (epoch \(opt.metadata["epoch"] ?? "?")) checkpoints disagree")
        }
        try model.load(weights)
        let store = model.parameters
        for e in store.entries where e.role.isTrainable {
            let name = "momentum." + e.name
            guard let info = opt.tensors[name] else { throw ModelError.missingTensor(name: name) }
            guard info.shape == e.shape else { throw ModelError.shapeMismatch(name: name, expected: e.shape, got: info.shape) }
            try opt.read(name, into: store.momentum.pointer + e.offset, count: e.count)
        }
        return (weights.metadata, opt.metadata)
    }
}
