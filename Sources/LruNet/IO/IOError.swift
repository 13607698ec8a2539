/// A file could not be read or written. Every case names the file and what is
/// wrong with it in one line, fit for a command-line error message.
public enum IOError: Error, CustomStringConvertible, Equatable {
    case cannotOpen(path: String, reason: String)
    case truncated(path: String, detail: String)
    case malformed(path: String, detail: String)
    case unsupported(path: String, detail: String)
    case writeFailed(path: String, reason: String)

    public var description: String {
        switch self {
        case let .cannotOpen(p, r): return "\(p): cannot open: \(r)"
        case let .truncated(p, d): return "\(p): file is truncated: \(d)"
        case let .malformed(p, d): return "\(p): not a valid file: \(d)"
        case let .unsupported(p, d): return "\(p): unsupported: \(d)"
        case let .writeFailed(p, r): return "\(p): cannot write: \(r)"
        }
    }
}

import Foundation

enum FileBytes {
    /// Reads a whole regular file (memory-mapped when possible), refusing anything over `limit` bytes.
    static func read(_ path: String, limit: Int = 1 << 31) throws -> Data {
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDir) else {
            throw IOError.cannotOpen(path: path, reason: "no such file")
        }
        guard !isDir.boolValue else { throw IOError.cannotOpen(path: path, reason: "is a directory") }
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
        if let size, size > limit { throw IOError.unsupported(path: path, detail: "\(size) bytes is larger than the \(limit)-byte limit") }
        do { return try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped) }
        catch { throw IOError.cannotOpen(path: path, reason: (error as NSError).localizedDescription) }
    }

    /// Writes `data` so that a crash never leaves a partial file: a temporary file in the same
    /// directory is written and synced, then renamed over `path`.
    static func writeAtomically(_ data: Data, to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw IOError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        var ok = true
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                let n = write(fd, raw.baseAddress! + off, raw.count - off)
                if n <= 0 { ok = false; break }
                off += n
            }
        }
        if ok { ok = fsync(fd) == 0 }
        let reason = String(cString: strerror(errno))
        close(fd)
        guard ok, rename(tmp, path) == 0 else {
            unlink(tmp)
            throw IOError.writeFailed(path: path, reason: reason)
        }
    }
}

/// Multiplies dimensions, returning nil on overflow or a negative dimension.
func checkedProduct(_ dims: [Int]) -> Int? {
    var p = 1
    for d in dims {
        guard d >= 0 else { return nil }
        let (r, o) = p.multipliedReportingOverflow(by: d)
        if o { return nil }
        p = r
    }
    return p
}
