import Foundation

/// NumPy `.npy` files of float32 in C order, for exchanging inputs and outputs
/// with NumPy and PyTorch users (`np.save` / `np.load`).
public enum Npy {
    static let magic: [UInt8] = [0x93, 0x4E, 0x55, 0x4D, 0x50, 0x59]   // "\x93NUMPY"

    /// Reads a float32 array (`<f4`, C order, format version 1-3).
    public static func read(_ path: String) throws -> Tensor {
        try decode(try FileBytes.read(path), name: path)
    }

    /// Decodes `.npy` bytes already in memory; `name` stands for the file in errors. Allocates
    /// only what the bytes hold.
    public static func decode(_ data: Data, name path: String = ".npy data") throws -> Tensor {
        let data = data.startIndex == 0 ? data : Data(data)      // zero-based indices below
        func bad(_ why: String) -> IOError { .malformed(path: path, detail: why) }
        guard data.count >= 10, Array(data.prefix(6)) == magic else { throw bad("no .npy magic (\\x93NUMPY)") }
        let major = data[6]
        let headerLength: Int, headerStart: Int
        switch major {
        case 1: headerLength = Int(data[8]) | Int(data[9]) << 8; headerStart = 10
        case 2, 3:
            guard data.count >= 12 else { throw IOError.truncated(path: path, detail: "no header length") }
            headerLength = (8..<12).reduce(0) { $0 | Int(data[$1]) << (8 * ($1 - 8)) }; headerStart = 12
        default: throw IOError.unsupported(path: path, detail: ".npy format version \(major)")
        }
        guard headerStart + headerLength <= data.count else {
            throw IOError.truncated(path: path, detail: "header says \(headerLength) bytes, file has \(data.count - headerStart)")
        }
        guard let header = String(data: data.subdata(in: headerStart..<(headerStart + headerLength)), encoding: .utf8) else {
            throw bad("header is not text")
        }
        guard let descr = field("descr", in: header), let fortran = field("fortran_order", in: header),
              let shapeText = field("shape", in: header) else { throw bad("header lacks descr, fortran_order or shape") }
        guard descr == "'<f4'" || descr == "'|f4'" || descr == "'f4'" else {
            throw IOError.unsupported(path: path, detail: "dtype \(quoted(descr.trimmingCharacters(in: CharacterSet(charactersIn: "'\"")), limit: 24)); expected float32 ('<f4'), e.g. x.astype(np.float32)")
        }
        guard fortran == "False" else { throw IOError.unsupported(path: path, detail: "Fortran-ordered array; save a C-ordered one") }
        let dims = shapeText.trimmingCharacters(in: CharacterSet(charactersIn: "() ")).split(separator: ",")
            .map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        let shape = try dims.map { s -> Int in
            guard let v = Int(s), v >= 0 else { throw bad("shape \(quoted(shapeText))") }
            return v
        }
        let start = headerStart + headerLength
        guard let count = checkedProduct(shape), count <= (data.count - start) / 4 else {
            throw IOError.truncated(path: path, detail: "shape \(shape) needs more data than the \(data.count - start) bytes present")
        }
        guard count * 4 == data.count - start else {
            throw bad("shape \(shape) needs \(count * 4) data bytes, file has \(data.count - start)")
        }
        var values = [Float](repeating: 0, count: count)
        values.withUnsafeMutableBytes { dst in
            data.withUnsafeBytes { src in
                if count > 0 { dst.copyMemory(from: UnsafeRawBufferPointer(rebasing: src[start..<(start + count * 4)])) }
            }
        }
        return Tensor(shape: shape, data: values)
    }

    /// The value text of `'key': value` in a .npy header dict.
    private static func field(_ key: String, in header: String) -> String? {
        guard let r = header.range(of: "'\(key)':") else { return nil }
        var rest = header[r.upperBound...].drop { $0 == " " }
        if rest.first == "(" {
            guard let close = rest.firstIndex(of: ")") else { return nil }
            return String(rest[...close])
        }
        let end = rest.firstIndex { $0 == "," || $0 == "}" } ?? rest.endIndex
        rest = rest[..<end]
        return rest.trimmingCharacters(in: .whitespaces)
    }

    /// Writes a float32 array, format 1.0, atomically.
    public static func write(_ tensor: Tensor, to path: String) throws {
        let dims = tensor.shape.map(String.init)
        let shape = dims.count == 1 ? "(\(dims[0]),)" : "(\(dims.joined(separator: ", ")))"
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': \(shape), }"
        let total = 10 + header.utf8.count + 1
        header += String(repeating: " ", count: (64 - total % 64) % 64) + "\n"
        var out = Data(magic)
        out.append(contentsOf: [1, 0, UInt8(header.utf8.count & 0xFF), UInt8(header.utf8.count >> 8)])
        out.append(header.data(using: .utf8)!)
        tensor.data.withUnsafeBytes { out.append(contentsOf: $0) }
        try FileBytes.writeAtomically(out, to: path)
    }
}
