/// A strict JSON reader for file headers (safetensors), written for hostile input: it reads
/// bytes, never recurses deeper than ``maxDepth``, keeps numbers as their text until asked,
/// rejects duplicate keys, and allocates only what the input holds.
///
/// Foundation's `JSONSerialization` would do, but it goes through `NSNumber` and `Any`, allows
/// duplicate keys (the last wins) and has no depth bound we control.
package enum JSONValue: Equatable {
    case object([(key: String, value: JSONValue)])
    case array([JSONValue])
    case string(String)
    /// The number's text, as written (validated JSON number syntax).
    case number(String)
    case bool(Bool)
    case null

    package static func == (a: JSONValue, b: JSONValue) -> Bool {
        switch (a, b) {
        case let (.object(x), .object(y)): return x.count == y.count && zip(x, y).allSatisfy { $0.key == $1.key && $0.value == $1.value }
        case let (.array(x), .array(y)): return x == y
        case let (.string(x), .string(y)), let (.number(x), .number(y)): return x == y
        case let (.bool(x), .bool(y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }

    /// Safetensors headers are three levels deep.
    package static let maxDepth = 16

    /// Parses one JSON value that fills `bytes` (whitespace allowed around it).
    /// - Throws: ``JSONError`` naming the byte offset and the problem.
    package static func parse(_ bytes: UnsafeRawBufferPointer) throws -> JSONValue {
        var p = JSONParser(bytes: bytes)
        p.skipSpace()
        let v = try p.value(depth: 0)
        p.skipSpace()
        guard p.at == bytes.count else { throw p.error("unexpected text after the value") }
        return v
    }

    /// The value as an integer, when it is a whole number that fits an `Int`.
    package var integer: Int? {
        guard case let .number(text) = self else { return nil }
        if let i = Int(text) { return i }
        guard let d = Double(text), d == d.rounded(), abs(d) < 9e15 else { return nil }
        return Int(d)
    }
}

/// Where and why a JSON text is rejected.
package struct JSONError: Error, CustomStringConvertible {
    package let offset: Int, problem: String
    package var description: String { "JSON at byte \(offset): \(problem)" }
}

private struct JSONParser {
    let bytes: UnsafeRawBufferPointer
    var at = 0

    init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    func error(_ problem: String) -> JSONError { JSONError(offset: at, problem: problem) }

    var peek: UInt8? { at < bytes.count ? bytes[at] : nil }

    mutating func skipSpace() {
        while let c = peek, c == 0x20 || c == 0x09 || c == 0x0A || c == 0x0D { at += 1 }
    }

    mutating func expect(_ c: UInt8, _ what: String) throws {
        guard peek == c else { throw error("expected \(what)") }
        at += 1
    }

    mutating func literal(_ word: String, _ v: JSONValue) throws -> JSONValue {
        for c in word.utf8 {
            guard peek == c else { throw error("invalid literal") }
            at += 1
        }
        return v
    }

    mutating func value(depth: Int) throws -> JSONValue {
        guard depth < JSONValue.maxDepth else { throw error("nested deeper than \(JSONValue.maxDepth) levels") }
        switch peek {
        case UInt8(ascii: "{"): return try object(depth: depth)
        case UInt8(ascii: "["): return try array(depth: depth)
        case UInt8(ascii: "\""): return .string(try string())
        case UInt8(ascii: "t"): return try literal("true", .bool(true))
        case UInt8(ascii: "f"): return try literal("false", .bool(false))
        case UInt8(ascii: "n"): return try literal("null", .null)
        case let c? where c == UInt8(ascii: "-") || (c >= 0x30 && c <= 0x39): return .number(try number())
        case nil: throw error("unexpected end of text")
        default: throw error("unexpected character")
        }
    }

    mutating func object(depth: Int) throws -> JSONValue {
        at += 1
        var members: [(key: String, value: JSONValue)] = []
        var keys = Set<String>()
        skipSpace()
        if peek == UInt8(ascii: "}") { at += 1; return .object(members) }
        while true {
            skipSpace()
            guard peek == UInt8(ascii: "\"") else { throw error("expected a key string") }
            let key = try string()
            guard keys.insert(key).inserted else { throw error("duplicate key \(quoted(key))") }
            skipSpace()
            try expect(UInt8(ascii: ":"), "':'")
            skipSpace()
            members.append((key, try value(depth: depth + 1)))
            skipSpace()
            if peek == UInt8(ascii: ",") { at += 1; continue }
            try expect(UInt8(ascii: "}"), "',' or '}'")
            return .object(members)
        }
    }

    mutating func array(depth: Int) throws -> JSONValue {
        at += 1
        var items: [JSONValue] = []
        skipSpace()
        if peek == UInt8(ascii: "]") { at += 1; return .array(items) }
        while true {
            skipSpace()
            items.append(try value(depth: depth + 1))
            skipSpace()
            if peek == UInt8(ascii: ",") { at += 1; continue }
            try expect(UInt8(ascii: "]"), "',' or ']'")
            return .array(items)
        }
    }

    /// A string's UTF-8 bytes with escapes resolved; invalid UTF-8 and raw control characters are errors.
    mutating func string() throws -> String {
        at += 1
        // Most strings have no escapes: validate the bytes in place.
        var end = at
        while end < bytes.count, bytes[end] != UInt8(ascii: "\""), bytes[end] != UInt8(ascii: "\\"), bytes[end] >= 0x20 { end += 1 }
        if end < bytes.count && bytes[end] == UInt8(ascii: "\"") {
            guard let s = String(validating: UnsafeRawBufferPointer(rebasing: bytes[at..<end]), as: UTF8.self) else {
                throw error("string is not valid UTF-8")
            }
            at = end + 1
            return s
        }
        var out: [UInt8] = []
        while true {
            guard let c = peek else { throw error("unterminated string") }
            at += 1
            switch c {
            case UInt8(ascii: "\""):
                guard let s = String(validating: out, as: UTF8.self) else { throw error("string is not valid UTF-8") }
                return s
            case UInt8(ascii: "\\"):
                guard let e = peek else { throw error("unterminated escape") }
                at += 1
                switch e {
                case UInt8(ascii: "\""), UInt8(ascii: "\\"), UInt8(ascii: "/"): out.append(e)
                case UInt8(ascii: "b"): out.append(0x08)
                case UInt8(ascii: "f"): out.append(0x0C)
                case UInt8(ascii: "n"): out.append(0x0A)
                case UInt8(ascii: "r"): out.append(0x0D)
                case UInt8(ascii: "t"): out.append(0x09)
                case UInt8(ascii: "u"): try unicodeEscape(into: &out)
                default: throw error("invalid escape")
                }
            case 0..<0x20: throw error("control character in a string")
            default: out.append(c)
            }
        }
    }

    mutating func hex4() throws -> UInt32 {
        var v: UInt32 = 0
        for _ in 0..<4 {
            guard let c = peek else { throw error("unterminated \\u escape") }
            let d: UInt32
            switch c {
            case 0x30...0x39: d = UInt32(c - 0x30)
            case 0x41...0x46: d = UInt32(c - 0x41 + 10)
            case 0x61...0x66: d = UInt32(c - 0x61 + 10)
            default: throw error("invalid \\u escape")
            }
            v = v << 4 | d
            at += 1
        }
        return v
    }

    mutating func unicodeEscape(into out: inout [UInt8]) throws {
        var scalar = try hex4()
        if (0xD800..<0xDC00).contains(scalar) {          // a surrogate pair
            guard peek == UInt8(ascii: "\\") else { throw error("unpaired surrogate") }
            at += 1
            guard peek == UInt8(ascii: "u") else { throw error("unpaired surrogate") }
            at += 1
            let low = try hex4()
            guard (0xDC00..<0xE000).contains(low) else { throw error("unpaired surrogate") }
            scalar = 0x10000 + (scalar - 0xD800) << 10 + (low - 0xDC00)
        }
        guard let u = Unicode.Scalar(scalar) else { throw error("unpaired surrogate") }
        out.append(contentsOf: Array(String(Character(u)).utf8))
    }

    /// JSON number syntax: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
    mutating func number() throws -> String {
        let start = at
        func digits() -> Int {
            let s = at
            while let c = peek, c >= 0x30 && c <= 0x39 { at += 1 }
            return at - s
        }
        if peek == UInt8(ascii: "-") { at += 1 }
        if peek == UInt8(ascii: "0") { at += 1 } else if digits() == 0 { throw error("invalid number") }
        if peek == UInt8(ascii: ".") {
            at += 1
            guard digits() > 0 else { throw error("invalid number") }
        }
        if peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E") {
            at += 1
            if peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-") { at += 1 }
            guard digits() > 0 else { throw error("invalid number") }
        }
        guard at - start <= 64 else { throw error("number longer than 64 characters") }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<at]), as: UTF8.self)
    }
}
