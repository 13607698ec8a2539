import Foundation

/// A checkpoint in PyTorch's legacy `torch.save` format (before PyTorch 1.6), as the authors
/// published theirs (`*.t7`): read in Swift, with no Python and no code from the file run.
///
/// The file is five pickles, then the storages' bytes: the magic number, the protocol version
/// (1001), system information (byte order), the saved object, and the list of storage keys;
/// then, for each key in that order, an 8-byte element count and the little-endian values. The
/// object is `{'net': OrderedDict(state_dict), 'acc': float, 'epoch': int}` (or a bare state
/// dict); its tensors are `_rebuild_tensor_v2` calls over `FloatStorage`s named by persistent
/// ids. The pickles run on `PickleMachine`, which refuses anything that is not such data.
public struct TorchCheckpoint {
    /// The state dict in file order, names as stored (with DataParallel's `module.` if present).
    public let tensors: [(name: String, tensor: Tensor)]
    /// The `acc` entry (the test accuracy in percent the authors' script saved), if any.
    public let accuracy: Double?
    /// The `epoch` entry, if any.
    public let epoch: Int?

    /// The 10-byte magic number `0x1950a86a20f9469cfc6c`, little-endian as LONG1 stores it.
    static let magic: [UInt8] = [0x6C, 0xFC, 0x9C, 0x46, 0xF9, 0x20, 0x6A, 0xA8, 0x50, 0x19]
    static let protocolVersion = 1001

    /// Whether `data` starts as every legacy `torch.save` file does: a pickle (protocol 2-5)
    /// of the magic number as a 10-byte LONG1. No safetensors header length spells it.
    public static func startsWithMagic(_ data: Data) -> Bool {
        let head = Array(data.prefix(14))
        return head.count == 14 && head[0] == 0x80 && (2...5).contains(head[1]) && head[2] == 0x8A && head[3] == 10
            && Array(head[4...]) == magic
    }

    public init(path: String) throws {
        try self.init(data: try FileBytes.read(path), name: path)
    }

    /// Reads a checkpoint from memory; `name` appears in error messages.
    public init(data: Data, name: String = "checkpoint") throws {
        let parsed: (tensors: [(String, Tensor)], accuracy: Double?, epoch: Int?)
        do {
            parsed = try data.withUnsafeBytes { (raw: UnsafeRawBufferPointer) throws -> ([(String, Tensor)], Double?, Int?) in try Self.parse(raw) }
        } catch let e as PickleError {
            throw IOError.malformed(path: name, detail: e.description)
        } catch let e as TorchFormatError {
            throw IOError.malformed(path: name, detail: e.description)
        }
        tensors = parsed.tensors.map { (name: $0.0, tensor: $0.1) }
        accuracy = parsed.accuracy
        epoch = parsed.epoch
    }

    /// What the five pickles say: the state dict's tensors, `acc`, `epoch`, and the storages in
    /// the order their bytes follow, with the offset of the first.
    struct Pickles {
        let entries: [(String, PickleTensor)]
        let accuracy: Double?, epoch: Int?
        let storages: [PickleStorage]
        let dataStart: Int
    }

    /// A file's storage section of zeros for `pickles` (the first five pickles of a file), or nil
    /// when they are refused or ask for more than `limit` bytes: the fuzz harness feeds pickles
    /// and lets this supply the bulk, as real files have it.
    package static func zeroStorages(forPickles pickles: Data, limit: Int) -> Data? {
        guard let p = try? pickles.withUnsafeBytes({ try parsePickles($0, storageLimit: limit / 4) }), p.dataStart == pickles.count else { return nil }
        var out = Data()
        for s in p.storages {
            guard out.count + 8 + 4 * s.rootCount <= limit else { return nil }
            withUnsafeBytes(of: Int64(s.rootCount).littleEndian) { out.append(contentsOf: $0) }
            out.append(Data(count: 4 * s.rootCount))
        }
        return out
    }

    private static func parse(_ bytes: UnsafeRawBufferPointer) throws -> ([(String, Tensor)], Double?, Int?) {
        let p = try parsePickles(bytes, storageLimit: bytes.count / 4)
        var pos = p.dataStart
        var dataStart: [String: Int] = [:]
        for storage in p.storages {
            let key = storage.key
            guard bytes.count - pos >= 8 else { throw TorchFormatError("the file ends before storage \(quoted(key))") }
            let count = Int(Int64(littleEndian: bytes.loadUnaligned(fromByteOffset: pos, as: Int64.self)))
            guard count == storage.rootCount else { throw TorchFormatError("storage \(quoted(key)) holds \(count) elements, its id says \(storage.rootCount)") }
            guard count <= (bytes.count - pos - 8) / 4 else { throw TorchFormatError("the file ends inside storage \(quoted(key))") }
            dataStart[key] = pos + 8
            pos += 8 + 4 * count
        }
        guard pos == bytes.count else { throw TorchFormatError("\(bytes.count - pos) bytes after the last storage") }

        // Tensors may share a storage (tied weights), so what they copy out is bounded on its own:
        // at most four times the values the file holds, never a storage read a thousand times.
        var total = 0
        for (_, t) in p.entries {
            total += t.shape.reduce(1, *)
            guard total <= bytes.count else {
                throw TorchFormatError("the tensors hold more values than four times what the file's \(bytes.count) bytes can (shared storages read many times)")
            }
        }
        var tensors: [(String, Tensor)] = []
        for (name, t) in p.entries {
            let base = dataStart[t.storage.key]!   // every tensor's storage is in the key list (parsePickles)
            let count = t.shape.reduce(1, *), first = base + 4 * (t.storage.start + t.offset)
            let values = (0..<count).map { Float(bitPattern: UInt32(littleEndian: bytes.loadUnaligned(fromByteOffset: first + 4 * $0, as: UInt32.self))) }
            tensors.append((name, Tensor(shape: t.shape, data: values)))
        }
        return (tensors, p.accuracy, p.epoch)
    }

    private static func parsePickles(_ bytes: UnsafeRawBufferPointer, storageLimit limit: Int) throws -> Pickles {
        if bytes.count >= 4 && bytes[0] == 0x50 && bytes[1] == 0x4B && bytes[2] == 3 && bytes[3] == 4 {
            throw TorchFormatError("a zip-format checkpoint (torch.save since PyTorch 1.6); only the legacy format (.t7, .pth before 1.6) is read")
        }
        guard bytes.count >= 2, bytes[0] == 0x80 else { throw TorchFormatError("not a PyTorch legacy checkpoint (no pickle at the start)") }
        var (value, pos) = try PickleMachine.load(bytes, at: 0)
        guard case let .bigInt(m) = value, m == magic else { throw TorchFormatError("not a PyTorch legacy checkpoint (wrong magic number)") }
        (value, pos) = try PickleMachine.load(bytes, at: pos)
        guard value.asInt == protocolVersion else { throw TorchFormatError("protocol version \(value.asInt.map(String.init) ?? value.kind), expected \(protocolVersion)") }
        (value, pos) = try PickleMachine.load(bytes, at: pos)
        guard case let .dict(info) = value, case .bool(true)? = info["little_endian"] else {
            throw TorchFormatError("written on a big-endian machine (or without system information); not supported")
        }

        // The object, with the storages its persistent ids name.
        var storages: [String: PickleStorage] = [:]
        (value, pos) = try PickleMachine.load(bytes, at: pos) { id in
            guard case let .tuple(f, _) = id, f.count == 6, case .string("storage") = f[0], case let .string(key) = f[2],
                  case .string = f[3], let size = f[4].asInt else {
                throw TorchFormatError("a persistent id that is not a storage")
            }
            guard case .global(.floatStorage) = f[1] else { throw TorchFormatError("a storage of type \(f[1].kind); only torch.FloatStorage (float32) is read") }
            guard (0...limit).contains(size) else { throw TorchFormatError("storage \(quoted(key)) of \(size) elements is larger than the file") }
            if let known = storages[key], known.rootCount != size { throw TorchFormatError("storage \(quoted(key)) is named with two sizes") }
            var storage = PickleStorage(key: key, rootCount: size, start: 0, count: size)
            switch f[5] {
            case .none: break
            case let .tuple(v, _) where v.count == 3:
                guard let start = v[1].asInt, let count = v[2].asInt, start >= 0, count >= 0, start <= size, count <= size - start else {
                    throw TorchFormatError("a view of storage \(quoted(key)) outside it")
                }
                storage = PickleStorage(key: key, rootCount: size, start: start, count: count)
            default: throw TorchFormatError("storage \(quoted(key)) has malformed view metadata")
            }
            storages[key] = PickleStorage(key: key, rootCount: size, start: 0, count: size)
            return .storage(storage)
        }
        let (entries, accuracy, epoch) = try stateDict(value)

        // The storage keys: the order of the storages' bytes. Each must be used, and each used one listed.
        (value, pos) = try PickleMachine.load(bytes, at: pos)
        guard case let .list(keyList) = value else { throw TorchFormatError("the storage key list is a \(value.kind)") }
        var ordered: [PickleStorage] = [], listed = Set<String>()
        for item in keyList.items {
            guard case let .string(key) = item else { throw TorchFormatError("a storage key is a \(item.kind)") }
            guard let storage = storages[key] else { throw TorchFormatError("storage \(quoted(key)) is listed but no tensor uses it") }
            guard listed.insert(key).inserted else { throw TorchFormatError("storage \(quoted(key)) is listed twice") }
            ordered.append(storage)
        }
        if let (name, t) = entries.first(where: { !listed.contains($0.1.storage.key) }) {
            throw TorchFormatError("storage \(quoted(t.storage.key)) of tensor \(quoted(name)) is not in the file")
        }
        return Pickles(entries: entries, accuracy: accuracy, epoch: epoch, storages: ordered, dataStart: pos)
    }

    /// The state dict (a dict of name to tensor) inside the saved object, and `acc`, `epoch`.
    private static func stateDict(_ object: PickleValue) throws -> ([(String, PickleTensor)], Double?, Int?) {
        guard case let .dict(top) = object else { throw TorchFormatError("the saved object is a \(object.kind), not a dict") }
        func tensors(_ d: PickleDict) throws -> [(String, PickleTensor)]? {
            var out: [(String, PickleTensor)] = []
            var seen = Set<String>()
            for (k, v) in d.items {
                guard case let .string(name) = k, case let .tensor(t) = v else { return nil }
                guard seen.insert(name).inserted else { throw TorchFormatError("tensor \(quoted(name)) appears twice") }
                out.append((name, t))
            }
            return out
        }
        if let direct = try tensors(top), !direct.isEmpty { return (direct, nil, nil) }
        for key in ["net", "state_dict", "model"] {
            guard case let .dict(d)? = top[key] else { continue }
            guard let entries = try tensors(d) else { throw TorchFormatError("'\(key)' holds something other than named tensors") }
            var accuracy: Double?
            switch top["acc"] {
            case .float(let a)?: accuracy = a
            case .int(let a)?: accuracy = Double(a)
            default: break
            }
            return (entries, accuracy, top["epoch"]?.asInt)
        }
        throw TorchFormatError("no state dict in the saved object (looked for a dict of tensors, 'net', 'state_dict', 'model')")
    }
}

struct TorchFormatError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
