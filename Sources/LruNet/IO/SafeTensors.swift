import Foundation

/// One tensor's entry in a safetensors header.
public struct SafeTensorInfo: Equatable, Sendable {
    public let dtype: String
    public let shape: [Int]
    /// Byte range within the data section.
    public let start: Int, end: Int
}

/// A safetensors file: an 8-byte little-endian header length, a JSON header
/// (`name -> {dtype, shape, data_offsets}` plus optional `__metadata__`
/// strings), then the raw little-endian data.
///
/// Reading validates the whole header before any tensor is touched, as strictly as the format's
/// reference implementation: the header is one JSON object (read by our own bounded parser,
/// `JSONValue`), every tensor's byte range holds its shape and dtype, and the ranges tile the
/// data section exactly. Sizes are checked against the bytes present, so a hostile header
/// cannot cause an allocation larger than the file.
public final class SafeTensorsFile {
    /// The file's path, or the name given to in-memory bytes (used in error messages).
    public let path: String
    public let metadata: [String: String]
    public let tensors: [String: SafeTensorInfo]
    private let data: Data
    private let dataStart: Int

    /// Largest header accepted (the format's reference implementation uses 100 MB).
    public static let maxHeaderBytes = 100_000_000
    static let elementSizes = ["F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
                               "U8": 1, "U16": 2, "U32": 4, "U64": 8, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1]

    public var names: [String] { tensors.keys.sorted() }
    /// Bytes of tensor data the file holds.
    public var dataBytes: Int { data.count - dataStart }

    /// Reads and validates the file at `path` (memory-mapped).
    public convenience init(path: String) throws {
        try self.init(data: try FileBytes.read(path), name: path)
    }

    /// Validates safetensors bytes already in memory; `name` stands for the file in errors.
    public init(data: Data, name: String = "safetensors data") throws {
        path = name
        self.data = data
        guard data.count >= 8 else { throw IOError.truncated(path: name, detail: "\(data.count) bytes, no header length") }
        let n = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard n <= UInt64(Self.maxHeaderBytes) else {
            throw IOError.malformed(path: name, detail: "not a safetensors file (header length \(n) exceeds \(Self.maxHeaderBytes) bytes)")
        }
        guard Int(n) <= data.count - 8 else {
            throw IOError.truncated(path: name, detail: "header says \(n) bytes, only \(data.count - 8) follow")
        }
        dataStart = 8 + Int(n)
        let json: JSONValue
        do {
            json = try data.withUnsafeBytes { raw in
                let header = UnsafeRawBufferPointer(rebasing: raw[8..<(8 + Int(n))])
                guard header.first == UInt8(ascii: "{") else { throw JSONError(offset: 0, problem: "the header must start with '{'") }
                return try JSONValue.parse(header)
            }
        } catch let e as JSONError {
            throw IOError.malformed(path: name, detail: "header is not valid JSON (\(e))")
        }
        (metadata, tensors) = try Self.entries(json, name: name, dataBytes: data.count - dataStart)
    }

    /// The metadata and tensor table of a parsed header, checked against the data section.
    private static func entries(_ json: JSONValue, name: String, dataBytes: Int) throws
        -> (metadata: [String: String], tensors: [String: SafeTensorInfo]) {
        guard case let .object(members) = json else { throw IOError.malformed(path: name, detail: "header is not a JSON object") }
        var meta: [String: String] = [:]
        var infos: [String: SafeTensorInfo] = [:]
        for (key, value) in members {
            if key == "__metadata__" {
                guard case let .object(m) = value else { throw IOError.malformed(path: name, detail: "__metadata__ is not an object") }
                for (k, v) in m {
                    guard case let .string(s) = v else { throw IOError.malformed(path: name, detail: "metadata \(quoted(k)) is not a string") }
                    meta[k] = s
                }
                continue
            }
            infos[key] = try tensorInfo(key, value, name: name)
        }
        // The ranges must tile the data section: no gaps, no overlaps, nothing after the last.
        var end = 0
        for (tensor, info) in infos.sorted(by: { ($0.value.start, $0.value.end) < ($1.value.start, $1.value.end) }) {
            guard info.start == end else {
                throw IOError.malformed(path: name, detail: "tensor \(quoted(tensor)) starts at byte \(info.start), expected \(end) (ranges must not overlap or leave gaps)")
            }
            end = info.end
        }
        guard end <= dataBytes else {
            throw IOError.truncated(path: name, detail: "the tensors need \(end) bytes of data, the file holds \(dataBytes)")
        }
        guard end == dataBytes else {
            throw IOError.malformed(path: name, detail: "\(dataBytes - end) bytes after the last tensor")
        }
        return (meta, infos)
    }

    private static func tensorInfo(_ tensor: String, _ value: JSONValue, name: String) throws -> SafeTensorInfo {
        func bad(_ why: String) -> IOError { .malformed(path: name, detail: "tensor \(quoted(tensor)): \(why)") }
        guard case let .object(fields) = value else { throw bad("entry is not an object") }
        func field(_ k: String) -> JSONValue? { fields.first { $0.key == k }?.value }
        guard case let .string(dtype)? = field("dtype"), case let .array(shapeItems)? = field("shape"),
              case let .array(offsetItems)? = field("data_offsets")
        else { throw bad("needs dtype, shape and data_offsets") }
        guard shapeItems.count <= 32 else { throw bad("\(shapeItems.count) dimensions") }
        let shape = try shapeItems.map { v -> Int in
            guard let i = v.integer, i >= 0 else { throw bad("bad shape") }
            return i
        }
        guard offsetItems.count == 2, let start = offsetItems[0].integer, let end = offsetItems[1].integer, start >= 0, start <= end
        else { throw bad("data_offsets must be two increasing byte offsets") }
        guard let size = elementSizes[dtype] else {
            throw IOError.unsupported(path: name, detail: "tensor \(quoted(tensor)) has unknown dtype \(quoted(dtype, limit: 16))")
        }
        guard let count = checkedProduct(shape), count <= Int.max / 8 else { throw bad("shape \(shape) is too large") }
        guard end - start == count * size else { throw bad("data_offsets [\(start), \(end)] do not hold \(shape) of \(dtype)") }
        return SafeTensorInfo(dtype: dtype, shape: shape, start: start, end: end)
    }

    /// Copies a float32 tensor into `destination`, which must hold exactly `count` values.
    package func read(_ name: String, into destination: UnsafeMutablePointer<Float>, count: Int) throws {
        guard let info = tensors[name] else { throw ModelError.missingTensor(name: name) }
        guard info.dtype == "F32" else {
            throw IOError.unsupported(path: path, detail: "tensor \(quoted(name)) is \(info.dtype); only F32 is read")
        }
        guard (info.end - info.start) == count * 4 else {
            throw ModelError.shapeMismatch(name: name, expected: [count], got: info.shape)
        }
        data.withUnsafeBytes { raw in
            let src = raw.baseAddress! + dataStart + info.start
            // Little-endian on disk and in memory on every platform we run on.
            memcpy(destination, src, count * 4)
        }
    }

    /// The first NaN or infinity of a float32 tensor (index, value), if it has one.
    package func firstNonFinite(_ name: String) -> (Int, Float)? {
        guard let info = tensors[name], info.dtype == "F32" else { return nil }
        return data.withUnsafeBytes { raw in
            let bytes = UnsafeRawBufferPointer(rebasing: raw[(dataStart + info.start)..<(dataStart + info.end)])
            for i in 0..<(bytes.count / 4) {
                let v = bytes.loadUnaligned(fromByteOffset: 4 * i, as: Float.self)
                if !v.isFinite { return (i, v) }
            }
            return nil
        }
    }

    /// A float32 tensor as an array.
    public func array(_ name: String) throws -> [Float] {
        guard let info = tensors[name] else { throw ModelError.missingTensor(name: name) }
        let n = checkedProduct(info.shape) ?? 0
        var out = [Float](repeating: 0, count: n)
        try out.withUnsafeMutableBufferPointer { try read(name, into: $0.baseAddress!, count: n) }
        return out
    }

    /// Writes float32 tensors and string metadata in safetensors format, atomically
    /// (temporary file, fsync, rename), so a crash never leaves a corrupt file.
    public static func write(tensors: [String: Tensor], metadata: [String: String], to path: String) throws {
        let named = tensors.sorted { $0.key < $1.key }
        try withBuffers(named.map(\.value.data)) { buffers in
            try write(tensors: zip(named, buffers).map { ($0.key, $0.value.shape, $1) }, metadata: metadata, to: path)
        }
    }

    /// A float32 tensor, with its shape.
    public func tensor(_ name: String) throws -> Tensor {
        guard let info = tensors[name] else { throw ModelError.missingTensor(name: name) }
        return Tensor(shape: info.shape, data: try array(name))
    }

    package static func write(tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)],
                             metadata: [String: String], to path: String) throws {
        try FileBytes.writeAtomically(try encode(tensors: tensors, metadata: metadata), to: path)
    }

    /// Float32 tensors and string metadata in safetensors format, in memory (names sorted).
    package static func encode(tensors: [(name: String, shape: [Int], values: [Float])], metadata: [String: String]) throws -> Data {
        try withBuffers(tensors.map(\.values)) { buffers in
            try encode(tensors: zip(tensors, buffers).map { ($0.name, $0.shape, $1) }, metadata: metadata)
        }
    }

    package static func encode(tensors: [(name: String, shape: [Int], values: UnsafeBufferPointer<Float>)],
                               metadata: [String: String]) throws -> Data {
        var header: [String: Any] = [:]
        if !metadata.isEmpty { header["__metadata__"] = metadata }
        var offset = 0
        let sorted = tensors.sorted { $0.name < $1.name }
        for t in sorted {
            precondition(checkedProduct(t.shape) == t.values.count, "safetensors write: \(t.name) shape \(t.shape) vs \(t.values.count) values")
            header[t.name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + t.values.count * 4]] as [String: Any]
            offset += t.values.count * 4
        }
        var json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys])
        while json.count % 8 != 0 { json.append(0x20) }     // the format pads the header with spaces
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for t in sorted where t.values.count > 0 { out.append(UnsafeRawBufferPointer(t.values).bindMemory(to: UInt8.self)) }
        return out
    }
}

/// Runs `body` with a buffer pointer to each array (nested `withUnsafeBufferPointer` calls).
private func withBuffers<R>(_ arrays: [[Float]], _ body: ([UnsafeBufferPointer<Float>]) throws -> R) rethrows -> R {
    func step(_ i: Int, _ acc: [UnsafeBufferPointer<Float>]) throws -> R {
        if i == arrays.count { return try body(acc) }
        return try arrays[i].withUnsafeBufferPointer { try step(i + 1, acc + [$0]) }
    }
    return try step(0, [])
}
