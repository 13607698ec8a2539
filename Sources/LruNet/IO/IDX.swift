import CZlib
import Foundation

/// The IDX format of MNIST and Fashion-MNIST (big-endian dimensions, unsigned bytes), plain or
/// gzip-compressed.
///
/// The dimensions are read first and the values buffer is allocated once at the size they
/// give, after checking that size against what the file can hold (a deflate stream expands at
/// most about 1032 times), so a small hostile file cannot make it allocate much.
package enum IDX {
    /// Largest array accepted; the Fashion-MNIST training images are 47 MB.
    static let maxBytes = 1 << 30
    /// Deflate's largest expansion ratio (RFC 1951: a 258-byte match costs at least 2 bits).
    static let maxInflateRatio = 1032

    /// Reads an unsigned-byte IDX array of rank `rank` from a `.gz` or plain file.
    static func read(_ path: String, rank: Int) throws -> (dims: [Int], values: [UInt8]) {
        try decode(try FileBytes.read(path, limit: maxBytes), name: path, rank: rank)
    }

    /// Decodes IDX bytes (gzip-compressed when they start with the gzip magic).
    package static func decode(_ data: Data, name: String, rank: Int) throws -> (dims: [Int], values: [UInt8]) {
        try data.withUnsafeBytes { raw in
            if raw.count >= 2 && raw[0] == 0x1F && raw[1] == 0x8B {
                var source = try GzipSource(raw, name: name)
                return try decode(from: &source, name: name, rank: rank, limit: min(maxBytes, maxInflateRatio * raw.count))
            }
            var source = PlainSource(bytes: raw)
            return try decode(from: &source, name: name, rank: rank, limit: raw.count)
        }
    }

    private static func decode<S: ByteSource>(from source: inout S, name: String, rank: Int, limit: Int) throws
        -> (dims: [Int], values: [UInt8]) {
        var head = [UInt8](repeating: 0, count: 4 + 4 * rank)
        let got = try head.withUnsafeMutableBytes { try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[0..<4])) }
        guard got == 4 else { throw IOError.truncated(path: name, detail: "no IDX magic") }
        guard head[0] == 0, head[1] == 0 else { throw IOError.malformed(path: name, detail: "not an IDX file (bad magic)") }
        guard head[2] == 0x08 else {
            throw IOError.unsupported(path: name, detail: "IDX element type 0x\(String(head[2], radix: 16)); expected unsigned bytes (0x08)")
        }
        guard Int(head[3]) == rank else { throw IOError.malformed(path: name, detail: "IDX rank \(head[3]), expected \(rank)") }
        let dimBytes = try head.withUnsafeMutableBytes { try source.read(into: UnsafeMutableRawBufferPointer(rebasing: $0[4...])) }
        guard dimBytes == 4 * rank else { throw IOError.truncated(path: name, detail: "IDX header cut short") }
        let dims = (0..<rank).map { d in (0..<4).reduce(0) { $0 << 8 | Int(head[4 + 4 * d + $1]) } }
        guard let n = checkedProduct(dims), n <= limit else {
            throw IOError.truncated(path: name, detail: "dimensions \(dims) need more bytes than the file can hold (at most \(limit))")
        }
        var values = [UInt8](repeating: 0, count: n)
        let read = try values.withUnsafeMutableBytes { try source.read(into: $0) }
        guard read == n else { throw IOError.truncated(path: name, detail: "dimensions \(dims) need \(n) bytes, file has \(read)") }
        guard try source.atEnd() else { throw IOError.malformed(path: name, detail: "data after the \(n) bytes that dimensions \(dims) need") }
        return (dims, values)
    }
}

/// Bytes read in order from a file's contents.
private protocol ByteSource {
    /// Fills `buffer` as far as the source allows; returns the bytes written.
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int
    /// Whether nothing is left.
    mutating func atEnd() throws -> Bool
}

private struct PlainSource: ByteSource {
    let bytes: UnsafeRawBufferPointer
    var at = 0
    mutating func read(into buffer: UnsafeMutableRawBufferPointer) -> Int {
        let n = min(buffer.count, bytes.count - at)
        if n > 0 { buffer.baseAddress!.copyMemory(from: bytes.baseAddress! + at, byteCount: n) }
        at += n
        return n
    }
    mutating func atEnd() -> Bool { at == bytes.count }
}

/// One gzip member inflated with zlib, straight into the caller's buffers.
private struct GzipSource: ByteSource {
    private let stream: ZStream
    private let name: String
    private var ended = false

    init(_ bytes: UnsafeRawBufferPointer, name: String) throws {
        self.name = name
        stream = try ZStream(input: bytes, name: name)
    }

    mutating func read(into buffer: UnsafeMutableRawBufferPointer) throws -> Int {
        guard buffer.count > 0, !ended else { return 0 }
        let z = stream.z
        z.pointee.next_out = buffer.baseAddress!.assumingMemoryBound(to: Bytef.self)
        var written = 0
        while written < buffer.count && !ended {
            let chunk = min(buffer.count - written, Int(UInt32.max))
            z.pointee.avail_out = uInt(chunk)
            let rc = inflate(z, Z_NO_FLUSH)
            written += chunk - Int(z.pointee.avail_out)
            switch rc {
            case Z_OK: if z.pointee.avail_out > 0 && z.pointee.avail_in == 0 { throw IOError.truncated(path: name, detail: "gzip stream ends early") }
            case Z_STREAM_END: ended = true
            case Z_BUF_ERROR: if z.pointee.avail_in == 0 { throw IOError.truncated(path: name, detail: "gzip stream ends early") }
            default: throw IOError.malformed(path: name, detail: "gzip data is corrupt")
            }
        }
        return written
    }

    mutating func atEnd() throws -> Bool {
        if !ended {
            var probe: UInt8 = 0
            guard try withUnsafeMutableBytes(of: &probe, { try read(into: $0) }) == 0 else { return false }
        }
        return stream.z.pointee.avail_in == 0      // nothing after the gzip member either
    }
}

/// A zlib inflate stream for one gzip member, ended when released.
private final class ZStream {
    let z = UnsafeMutablePointer<z_stream>.allocate(capacity: 1)

    init(input: UnsafeRawBufferPointer, name: String) throws {
        z.initialize(to: z_stream())
        guard input.count <= Int(UInt32.max) else {
            z.deallocate()
            throw IOError.unsupported(path: name, detail: "gzip file larger than 4 GB")
        }
        z.pointee.next_in = UnsafeMutablePointer(mutating: input.baseAddress!.assumingMemoryBound(to: Bytef.self))
        z.pointee.avail_in = uInt(input.count)
        // 15 + 16: a gzip header and trailer around a deflate stream with a 32 KB window.
        guard inflateInit2_(z, 15 + 16, ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
            z.deallocate()
            throw IOError.malformed(path: name, detail: "cannot start gzip decoding")
        }
    }

    deinit { inflateEnd(z); z.deallocate() }
}
