import CZlib

/// The IDX format of MNIST and Fashion-MNIST (big-endian dimensions, unsigned
/// bytes), read from `.gz` or plain files alike through zlib.
enum IDX {
    /// Largest decompressed file accepted; the Fashion-MNIST training images are 47 MB.
    static let maxBytes = 1 << 30

    /// Decompresses (or just reads) a whole file, refusing more than `maxBytes`.
    static func readAll(_ path: String) throws -> [UInt8] {
        guard let gz = gzopen(path, "rb") else { throw IOError.cannotOpen(path: path, reason: "no such file or not readable") }
        defer { gzclose(gz) }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { gzread(gz, $0.baseAddress, UInt32($0.count)) }
            if n < 0 { throw IOError.malformed(path: path, detail: "gzip data is corrupt") }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<Int(n)])
            if out.count > maxBytes { throw IOError.unsupported(path: path, detail: "more than \(maxBytes) bytes of data") }
        }
        return out
    }

    /// Parses an unsigned-byte IDX array: returns its dimensions and the byte offset of the data.
    static func parse(_ bytes: [UInt8], path: String, expectRank rank: Int) throws -> (dims: [Int], start: Int) {
        guard bytes.count >= 4 else { throw IOError.truncated(path: path, detail: "no IDX magic") }
        guard bytes[0] == 0, bytes[1] == 0 else { throw IOError.malformed(path: path, detail: "not an IDX file (bad magic)") }
        guard bytes[2] == 0x08 else { throw IOError.unsupported(path: path, detail: "IDX element type 0x\(String(bytes[2], radix: 16)); expected unsigned bytes (0x08)") }
        guard Int(bytes[3]) == rank else { throw IOError.malformed(path: path, detail: "IDX rank \(bytes[3]), expected \(rank)") }
        let start = 4 + 4 * rank
        guard bytes.count >= start else { throw IOError.truncated(path: path, detail: "IDX header cut short") }
        let dims = (0..<rank).map { d in (0..<4).reduce(0) { $0 << 8 | Int(bytes[4 + 4 * d + $1]) } }
        guard let n = checkedProduct(dims), n == bytes.count - start else {
            throw IOError.truncated(path: path, detail: "dimensions \(dims) need \(checkedProduct(dims) ?? -1) bytes, file has \(bytes.count - start)")
        }
        return (dims, start)
    }
}
