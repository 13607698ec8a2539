import Foundation
import LruNet

/// What the fuzz harnesses (Fuzz/) and the corpus replay test (FuzzCorpusTests) do with one
/// input. Each target feeds the bytes to one reader through its in-memory API and checks what
/// a reader promises: it returns a consistent value or throws an error with a one-line
/// message. A broken promise traps, which libFuzzer reports as a crash. Allocation bounds and
/// memory errors are the sanitizer's and libFuzzer's to catch (`-malloc_limit_mb`).
public enum FuzzTarget: String, CaseIterable, Sendable {
    /// A safetensors file: header JSON, metadata, tensor table, F32 reads.
    case safetensors
    /// A NumPy `.npy` file.
    case npy
    /// An IDX file, plain or gzip (read as rank 1 and rank 3).
    case idx
    /// A CIFAR binary file (read as CIFAR-10 and CIFAR-100).
    case cifar
    /// A checkpoint's header JSON, loaded into the model its metadata describes.
    case checkpoint
    /// A PyTorch legacy checkpoint (.t7): the pickle reader, the import, and the model load.
    case t7

    /// Largest input the harnesses are run with (`-max_len`); a checkpoint header of the
    /// largest architecture is about 40 KB.
    package static let maxLength = 65_536
    /// What a checkpoint input's tensors may ask the harness to supply in data bytes.
    package static let maxCheckpointData = 8 << 20

    /// Runs the target on one input; returns the error message when the reader refused it.
    @discardableResult
    public func run(_ bytes: UnsafeRawBufferPointer) -> String? {
        do {
            switch self {
            case .safetensors: try Self.safetensors(Data(bytes))
            case .npy: try Self.npy(Data(bytes))
            case .idx: return Self.idx(Data(bytes))
            case .cifar: return Self.cifar(Data(bytes))
            case .checkpoint: try Self.checkpoint(bytes)
            case .t7: try Self.t7(Data(bytes))
            }
            return nil
        } catch {
            return Self.checked(error)
        }
    }

    /// An error's message must be one line of reasonable length.
    private static func checked(_ error: Error) -> String {
        let message = "\(error)"
        precondition(!message.isEmpty && !message.contains(where: \.isNewline) && message.count <= 600,
                     "not a one-line error message: \(message.debugDescription)")
        return message
    }

    private static func safetensors(_ data: Data) throws {
        let file = try SafeTensorsFile(data: data, name: "input")
        var end = 0
        for (name, info) in file.tensors {
            precondition(info.start <= info.end && info.end <= file.dataBytes, "tensor \(name) outside the data")
            end = max(end, info.end)
            if info.dtype == "F32" {
                let t = try file.tensor(name)
                precondition(t.shape == info.shape && t.count * 4 == info.end - info.start, "tensor \(name) read wrong")
            }
        }
        precondition(end == file.dataBytes, "data section not covered")
        if let config = try? ModelConfig(metadata: file.metadata) { try config.validate() }
    }

    private static func npy(_ data: Data) throws {
        let t = try Npy.decode(data, name: "input")
        precondition(t.shape.allSatisfy { $0 >= 0 } && t.shape.reduce(1, *) == t.count, "shape and values disagree")
    }

    private static func idx(_ data: Data) -> String? {
        var messages: [String] = []
        for rank in [1, 3] {
            do {
                let (dims, values) = try IDX.decode(data, name: "input", rank: rank)
                precondition(dims.count == rank && dims.reduce(1, *) == values.count, "dimensions and values disagree")
            } catch { messages.append(checked(error)) }
        }
        return messages.count == 2 ? messages[1] : nil
    }

    private static func cifar(_ data: Data) -> String? {
        var messages: [String] = []
        for classes in [10, 100] {
            do {
                let (images, labels) = try CIFAR.decode(data, name: "input", classes: classes)
                precondition(images.count == 3072 * labels.count && labels.allSatisfy { $0 >= 0 && $0 < classes }, "records disagree")
                precondition(images.allSatisfy { $0 >= 0 && $0 <= 1 }, "pixel outside [0, 1]")
            } catch { messages.append(checked(error)) }
        }
        return messages.count == 2 ? messages[1] : nil
    }

    /// The input is a checkpoint's header JSON. The harness supplies a data section of the size
    /// the header's `data_offsets` ask for (up to ``maxCheckpointData``, zeros), so inputs stay a
    /// few KB while the fuzzer explores metadata, names and shapes; everything after that is
    /// the library's own path: parse, metadata to configuration, build, check, load, and a
    /// forward pass when the checkpoint is complete. The size comes from a plain scan for the
    /// largest number after `"data_offsets"`: when the scan is wrong, the file is simply one
    /// more the library must refuse.
    private static func checkpoint(_ header: UnsafeRawBufferPointer) throws {
        let need = largestOffset(header)
        guard need <= maxCheckpointData else { return }
        var file = Data(count: 8)
        file.withUnsafeMutableBytes { $0.storeBytes(of: UInt64(header.count).littleEndian, as: UInt64.self) }
        file.append(contentsOf: header)
        file.append(Data(count: need))
        try load(file)
    }

    /// The command line's load path: `SafeTensorsFile.checkpoint` then `Network(checkpoint:)`,
    /// and, with `forward`, a pass when the checkpoint is complete.
    private static func load(_ file: Data, forward: Bool = true) throws {
        let model = try Network(checkpoint: SafeTensorsFile.checkpoint(data: file, name: "input").file, threading: Threading(threads: 1))
        guard forward else { return }
        let side = model.inputChannels == 1 ? 28 : 32
        let logits = try model(Tensor(zeros: [1, model.inputChannels, side, side]))
        precondition(logits.shape == [1, model.classes] && logits.data.allSatisfy(\.isFinite), "bad logits")
    }

    /// The input is a .t7 file's five pickles, or a whole file. For pickles, the harness supplies
    /// the storages they name (zeros, up to ``maxCheckpointData`` bytes), so inputs stay a few KB
    /// while the fuzzer explores the pickles; then the reader, the import and the load run as
    /// `lrunet eval --weights input.t7` runs them, up to the loaded weights (the checkpoint
    /// target runs the forward pass on every architecture). What the reader returns must be consistent.
    private static func t7(_ input: Data) throws {
        let data = TorchCheckpoint.zeroStorages(forPickles: input, limit: maxCheckpointData).map { input + $0 } ?? input
        let c = try TorchCheckpoint(data: data, name: "input")
        for (name, t) in c.tensors { precondition(t.shape.reduce(1, *) == t.data.count, "tensor \(name) read wrong") }
        try load(data, forward: false)
    }

    private static func largestOffset(_ text: UnsafeRawBufferPointer) -> Int {
        let key = Array("\"data_offsets\"".utf8)
        var best = 0, i = 0
        while i + key.count <= text.count {
            guard text[i] == key[0], text[i..<(i + key.count)].elementsEqual(key) else { i += 1; continue }
            i += key.count
            var number = 0, digits = 0, closed = false
            while i < text.count, !closed {
                let c = text[i]
                // Saturated just past the limit: 19 nines overflowed an Int (the harness's own bug,
                // Fuzz/regressions/checkpoint/crash-e0711a4b…).
                if c >= 0x30 && c <= 0x39 { number = min(number * 10 + Int(c - 0x30), maxCheckpointData + 1); digits += 1 }
                else { if digits > 0 { best = max(best, number) }; number = 0; digits = 0; closed = c == UInt8(ascii: "]") }
                i += 1
            }
        }
        return best
    }
}
