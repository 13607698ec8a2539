import Foundation

/// Labelled images in memory: pixels NCHW float32 scaled to [0, 1] (the
/// authors' `ToTensor`, no mean/std normalisation), labels as class indices.
public struct LabeledImages: Sendable {
    public let images: [Float]
    public let labels: [Int32]
    public let channels: Int, height: Int, width: Int
    public let numClasses: Int

    public var count: Int { labels.count }
    public var imageSize: Int { channels * height * width }

    public init(images: [Float], labels: [Int32], channels: Int, height: Int, width: Int, numClasses: Int) {
        precondition(images.count == labels.count * channels * height * width, "LabeledImages: sizes disagree")
        self.images = images; self.labels = labels
        self.channels = channels; self.height = height; self.width = width; self.numClasses = numClasses
    }

    /// The first `n` examples.
    public func prefix(_ n: Int) -> LabeledImages { slice(0..<min(n, count)) }

    /// Images `range` (clamped to the set).
    public func slice(_ range: Range<Int>) -> LabeledImages {
        let r = range.clamped(to: 0..<count)
        return LabeledImages(images: Array(images[(r.lowerBound * imageSize)..<(r.upperBound * imageSize)]), labels: Array(labels[r]),
                             channels: channels, height: height, width: width, numClasses: numClasses)
    }
}

/// The train/test split of a data set.
public enum Split: String, Sendable { case train, test }

/// The data sets the engine reads, by the names the checkpoints' metadata uses.
public enum DatasetKind: String, CaseIterable, Sendable {
    case fashionMNIST = "fashion-mnist"
    case cifar10
    case cifar100

    /// Accepts the metadata spelling and common variants (`fashionmnist`, `cifar-10`).
    public init?(name: String) {
        switch name.lowercased().replacingOccurrences(of: "_", with: "-") {
        case "fashion-mnist", "fashionmnist", "fmnist": self = .fashionMNIST
        case "cifar10", "cifar-10": self = .cifar10
        case "cifar100", "cifar-100": self = .cifar100
        default: return nil
        }
    }

    /// Where Debian's `dataset-fashion-mnist` installs the files; CIFAR has no default.
    public var defaultDirectory: String? {
        self == .fashionMNIST ? "/usr/share/datasets/fashion-mnist" : nil
    }

    public func load(directory: String, split: Split) throws -> LabeledImages {
        switch self {
        case .fashionMNIST: return try FashionMNIST.load(directory: directory, split: split)
        case .cifar10, .cifar100: return try CIFAR.load(directory: directory, split: split, classes: self == .cifar10 ? 10 : 100)
        }
    }
}

/// Fashion-MNIST (and MNIST) in the official IDX files, `.gz` or unpacked.
public enum FashionMNIST {
    public static func load(directory: String, split: Split) throws -> LabeledImages {
        let stem = split == .train ? "train" : "t10k"
        let imagesPath = try find(directory, "\(stem)-images-idx3-ubyte")
        let labelsPath = try find(directory, "\(stem)-labels-idx1-ubyte")
        let (dims, pixels) = try IDX.read(imagesPath, rank: 3)
        let (ldims, labelBytes) = try IDX.read(labelsPath, rank: 1)
        return try decode(dims: dims, pixels: pixels, labelCount: ldims[0], labels: labelBytes, name: labelsPath)
    }

    /// Fashion-MNIST from the bytes of its two IDX files (`.gz` or plain) already in memory.
    public static func decode(images: Data, labels: Data) throws -> LabeledImages {
        let (dims, pixels) = try IDX.decode(images, name: "images", rank: 3)
        let (ldims, labelBytes) = try IDX.decode(labels, name: "labels", rank: 1)
        return try decode(dims: dims, pixels: pixels, labelCount: ldims[0], labels: labelBytes, name: "labels")
    }

    private static func decode(dims: [Int], pixels: [UInt8], labelCount: Int, labels labelBytes: [UInt8], name: String) throws -> LabeledImages {
        guard labelCount == dims[0] else { throw IOError.malformed(path: name, detail: "\(labelCount) labels for \(dims[0]) images") }
        if let badLabel = labelBytes.first(where: { $0 >= 10 }) {
            throw IOError.malformed(path: name, detail: "label \(badLabel) is not a class 0-9")
        }
        return LabeledImages(images: pixels.map { Float($0) / 255 }, labels: labelBytes.map(Int32.init),
                             channels: 1, height: dims[1], width: dims[2], numClasses: 10)
    }

    static func find(_ dir: String, _ stem: String) throws -> String {
        for name in [stem + ".gz", stem, stem.replacingOccurrences(of: "-idx", with: ".idx") + ".gz"] {
            let p = (dir as NSString).appendingPathComponent(name)
            if FileManager.default.fileExists(atPath: p) { return p }
        }
        throw IOError.cannotOpen(path: (dir as NSString).appendingPathComponent(stem + ".gz"),
                                 reason: "no such file (looked for \(stem)[.gz])")
    }
}

/// CIFAR-10 and CIFAR-100 in the official binary format: fixed-size records of
/// label byte(s) then 3072 pixel bytes (R, G, B planes of 32x32).
/// CIFAR-10: `data_batch_1.bin ... data_batch_5.bin`, `test_batch.bin`, 1 label byte.
/// CIFAR-100: `train.bin`, `test.bin`, 2 label bytes (coarse, fine); the fine label is used.
public enum CIFAR {
    public static func files(classes: Int, split: Split) -> [String] {
        if classes == 10 { return split == .train ? (1...5).map { "data_batch_\($0).bin" } : ["test_batch.bin"] }
        return [split == .train ? "train.bin" : "test.bin"]
    }

    public static func load(directory: String, split: Split, classes: Int) throws -> LabeledImages {
        // Accept the archive's own sub-folder too.
        var dir = directory
        for sub in ["cifar-10-batches-bin", "cifar-100-binary"] {
            let p = (directory as NSString).appendingPathComponent(sub)
            if FileManager.default.fileExists(atPath: p) { dir = p }
        }
        var images: [Float] = [], labels: [Int32] = []
        for name in files(classes: classes, split: split) {
            let path = (dir as NSString).appendingPathComponent(name)
            let part = try decode(try FileBytes.read(path, limit: 1 << 30), name: path, classes: classes)
            images += part.images; labels += part.labels
        }
        return LabeledImages(images: images, labels: labels, channels: 3, height: 32, width: 32, numClasses: classes)
    }

    /// The records of one CIFAR binary file already in memory; `name` stands for the file in errors.
    public static func decode(_ data: Data, name: String, classes: Int) throws -> (images: [Float], labels: [Int32]) {
        precondition(classes == 10 || classes == 100, "CIFAR has 10 or 100 classes")
        let labelBytes = classes == 10 ? 1 : 2, record = labelBytes + 3072
        guard data.count % record == 0, data.count > 0 else {
            throw IOError.truncated(path: name, detail: "\(data.count) bytes is not a whole number of \(record)-byte records")
        }
        let n = data.count / record
        var labels = [Int32](repeating: 0, count: n)
        var images = [Float](repeating: 0, count: n * 3072)
        try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) in
            for r in 0..<n {
                let label = Int32(raw[r * record + labelBytes - 1])
                guard label < classes else { throw IOError.malformed(path: name, detail: "record \(r) has label \(label) >= \(classes)") }
                if classes == 100, raw[r * record] >= 20 {
                    throw IOError.malformed(path: name, detail: "record \(r) has coarse label \(raw[r * record]) >= 20")
                }
                labels[r] = label
                let px = r * record + labelBytes
                for i in 0..<3072 { images[r * 3072 + i] = Float(raw[px + i]) / 255 }    // as ToTensor
            }
        }
        return (images, labels)
    }
}
