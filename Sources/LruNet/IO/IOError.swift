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

/// Text from a file (a tensor name, a metadata value) fit for a one-line message: in single
/// quotes, cut to `limit` characters, control and separator characters escaped.
func quoted(_ text: some StringProtocol, limit: Int = 64) -> String {
    var out = "'"
    for (i, u) in text.unicodeScalars.enumerated() {
        if i == limit { out += "..."; break }
        switch u.properties.generalCategory {
        case .control, .format, .lineSeparator, .paragraphSeparator, .surrogate, .unassigned, .privateUse:
            out += "\\u{\(String(u.value, radix: 16))}"
        default: out.unicodeScalars.append(u)
        }
    }
    return out + "'"
}

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
    /// directory is written and synced, then renamed over `path`. On failure (disk full, file
    /// size limit, no permission) the temporary file is removed and `path` is untouched.
    static func writeAtomically(_ data: Data, to path: String) throws {
        let tmp = path + ".tmp-\(getpid())"
        let fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0o644)
        guard fd >= 0 else { throw IOError.writeFailed(path: path, reason: String(cString: strerror(errno))) }
        var failure: Int32 = 0
        data.withUnsafeBytes { raw in
            var off = 0
            while off < raw.count {
                // Half the file, then a place where a test may kill the process (CrashPoint).
                let chunk = off == 0 && raw.count > 1 ? raw.count / 2 : raw.count - off
                let n = write(fd, raw.baseAddress! + off, chunk)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { failure = n < 0 ? errno : ENOSPC; break }
                off += n
                if off < raw.count { CrashPoint.reach("write:" + (path as NSString).lastPathComponent) }
            }
        }
        if failure == 0 && fsync(fd) != 0 { failure = errno }
        close(fd)
        if failure == 0 && rename(tmp, path) != 0 { failure = errno }
        guard failure == 0 else {
            unlink(tmp)
            throw IOError.writeFailed(path: path, reason: String(cString: strerror(failure)))
        }
    }

    /// Makes renames in `directory` durable (best effort: some file systems refuse).
    static func syncDirectory(_ directory: String) {
        let fd = open(directory, O_RDONLY | O_DIRECTORY)
        if fd >= 0 { fsync(fd); close(fd) }
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
