import Foundation

/// A pickle reader that can only build data: the subset of Python's pickle machine that a
/// PyTorch state dict needs, and nothing that can run code.
///
/// A pickle is a program: `GLOBAL` names any Python callable and `REDUCE` calls it, which is
/// how a model file ships an exploit (`posix system`). This machine knows three globals
/// (``PickleGlobal``) and builds them into inert values; `REDUCE` only rebuilds a tensor or
/// makes an empty `OrderedDict`; `BUILD` only sets the state of an `OrderedDict` (PyTorch's
/// `_metadata`), which is dropped. Any other global, opcode or shape of arguments is a
/// ``PickleError`` naming it. Bounds: the mark stack and container nesting are at most
/// ``maxDepth`` deep, memo indices must have been written, every length is checked against the
/// bytes left, and a container placed inside another is frozen, so no value can contain itself.
struct PickleMachine {
    static let maxDepth = 32

    private let bytes: UnsafeRawBufferPointer
    private var pos: Int
    private var stack: [PickleValue] = []
    private var marks: [Int] = []
    private var memo: [Int: PickleValue] = [:]
    /// Resolves a persistent id (`BINPERSID`) to a value: the caller's storage table.
    private let persistentLoad: (PickleValue) throws -> PickleValue

    /// Runs the pickle that starts at `offset`; returns its value and the offset after `STOP`.
    static func load(_ bytes: UnsafeRawBufferPointer, at offset: Int,
                     persistentLoad: @escaping (PickleValue) throws -> PickleValue = { _ in throw PickleError.notAllowed("persistent id") })
        throws -> (value: PickleValue, end: Int) {
        var machine = PickleMachine(bytes: bytes, pos: offset, persistentLoad: persistentLoad)
        let value = try machine.run()
        return (value, machine.pos)
    }

    private init(bytes: UnsafeRawBufferPointer, pos: Int, persistentLoad: @escaping (PickleValue) throws -> PickleValue) {
        self.bytes = bytes; self.pos = pos; self.persistentLoad = persistentLoad
    }

    // MARK: - Reading the stream

    private mutating func byte() throws -> UInt8 {
        guard pos < bytes.count else { throw PickleError.truncated(at: pos) }
        defer { pos += 1 }
        return bytes[pos]
    }

    private mutating func take(_ n: Int) throws -> UnsafeRawBufferPointer {
        guard n >= 0, n <= bytes.count - pos else { throw PickleError.truncated(at: pos) }
        defer { pos += n }
        return UnsafeRawBufferPointer(rebasing: bytes[pos ..< pos + n])
    }

    private mutating func uint(_ width: Int) throws -> Int {
        let raw = try take(width)
        var v = 0
        for i in (0..<width).reversed() { v = v << 8 | Int(raw[i]) }
        return v
    }

    private mutating func line() throws -> String {
        guard let end = bytes[pos...].firstIndex(of: 0x0A) else { throw PickleError.truncated(at: pos) }
        defer { pos = end + 1 }
        return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[pos..<end]), as: UTF8.self)
    }

    private mutating func text(_ n: Int) throws -> String {
        let raw = try take(n)
        guard let s = String(validating: raw, as: UTF8.self) else { throw PickleError.malformed("string at byte \(pos - n) is not UTF-8") }
        return s
    }

    // MARK: - The stack

    private mutating func push(_ v: PickleValue) { stack.append(v) }

    private mutating func pop() throws -> PickleValue {
        guard let v = stack.popLast(), stack.count >= (marks.last ?? 0) else { throw PickleError.malformed("stack underflow at byte \(pos - 1)") }
        return v
    }

    private mutating func popMark() throws -> [PickleValue] {
        guard let m = marks.popLast() else { throw PickleError.malformed("no MARK before byte \(pos - 1)") }
        defer { stack.removeSubrange(m...) }
        return Array(stack[m...])
    }

    private mutating func top() throws -> PickleValue {
        guard let v = stack.last, stack.count > (marks.last ?? 0) else { throw PickleError.malformed("stack underflow at byte \(pos - 1)") }
        return v
    }

    private func tuple(_ items: [PickleValue]) throws -> PickleValue {
        let depth = try PickleValue.depth(containing: items)
        return .tuple(items, depth: depth)
    }

    // MARK: - The machine

    private mutating func run() throws -> PickleValue {
        while true {
            let at = pos
            let op = try byte()
            switch op {
            case 0x80: // PROTO
                let p = try byte()
                guard (2...5).contains(p) else { throw PickleError.unsupported("pickle protocol \(p)") }
            case 0x95: // FRAME (protocol 4): a length we need not use
                _ = try take(8)
            case 0x2E: // STOP
                guard marks.isEmpty, stack.count == 1 else { throw PickleError.malformed("STOP with \(stack.count) values on the stack") }
                return stack[0]
            case 0x28: // MARK
                guard marks.count < Self.maxDepth else { throw PickleError.tooDeep(at: at) }
                marks.append(stack.count)
            case 0x4E: push(.none) // NONE
            case 0x88: push(.bool(true)) // NEWTRUE
            case 0x89: push(.bool(false)) // NEWFALSE
            case 0x4A: push(.int(Int(Int32(truncatingIfNeeded: UInt32(try uint(4)))))) // BININT
            case 0x4B: push(.int(try uint(1))) // BININT1
            case 0x4D: push(.int(try uint(2))) // BININT2
            case 0x8A: // LONG1: little-endian two's complement; wider than 8 bytes only for the magic number
                let n = try uint(1)
                let raw = try take(n)
                guard n <= 16 else { throw PickleError.unsupported("an integer of \(n) bytes at byte \(at)") }
                if n <= 8 {
                    var v: UInt64 = n > 0 && raw[n - 1] & 0x80 != 0 ? ~0 : 0
                    for b in raw.reversed() { v = v << 8 | UInt64(b) }
                    push(.int(Int(Int64(bitPattern: n == 0 ? 0 : v))))
                } else { push(.bigInt(Array(raw))) }
            case 0x47: // BINFLOAT: big-endian double
                let raw = try take(8)
                var bits: UInt64 = 0
                for b in raw { bits = bits << 8 | UInt64(b) }
                push(.float(Double(bitPattern: bits)))
            case 0x58: push(.string(try text(try uint(4)))) // BINUNICODE
            case 0x8C: push(.string(try text(try uint(1)))) // SHORT_BINUNICODE
            case 0x29: push(.tuple([], depth: 1)) // EMPTY_TUPLE
            case 0x74: push(try tuple(try popMark())) // TUPLE
            case 0x85: push(try tuple([try pop()])) // TUPLE1
            case 0x86: let b = try pop(), a = try pop(); push(try tuple([a, b])) // TUPLE2
            case 0x87: let c = try pop(), b = try pop(), a = try pop(); push(try tuple([a, b, c])) // TUPLE3
            case 0x5D: push(.list(PickleList())) // EMPTY_LIST
            case 0x61: // APPEND
                let v = try pop()
                guard case let .list(l) = try top() else { throw PickleError.malformed("APPEND to a non-list at byte \(at)") }
                try l.append([v])
            case 0x65: // APPENDS
                let items = try popMark()
                guard case let .list(l) = try top() else { throw PickleError.malformed("APPENDS to a non-list at byte \(at)") }
                try l.append(items)
            case 0x7D: push(.dict(PickleDict(ordered: false))) // EMPTY_DICT
            case 0x73: // SETITEM
                let v = try pop(), k = try pop()
                guard case let .dict(d) = try top() else { throw PickleError.malformed("SETITEM on a non-dict at byte \(at)") }
                try d.set([k, v])
            case 0x75: // SETITEMS
                let items = try popMark()
                guard items.count % 2 == 0, case let .dict(d) = try top() else { throw PickleError.malformed("SETITEMS on a non-dict at byte \(at)") }
                try d.set(items)
            case 0x71: memo[try uint(1)] = try top() // BINPUT
            case 0x72: memo[try uint(4)] = try top() // LONG_BINPUT
            case 0x94: memo[memo.count] = try top() // MEMOIZE
            case 0x68, 0x6A: // BINGET, LONG_BINGET
                let i = try uint(op == 0x68 ? 1 : 4)
                guard let v = memo[i] else { throw PickleError.memo(index: i, at: at) }
                push(v)
            case 0x63: // GLOBAL "module\nname\n"
                let module = try line(), name = try line()
                guard let g = PickleGlobal(module: module, name: name) else { throw PickleError.global(module: module, name: name) }
                push(.global(g))
            case 0x93: // STACK_GLOBAL
                guard case let .string(name) = try pop(), case let .string(module) = try pop() else {
                    throw PickleError.malformed("STACK_GLOBAL without two strings at byte \(at)")
                }
                guard let g = PickleGlobal(module: module, name: name) else { throw PickleError.global(module: module, name: name) }
                push(.global(g))
            case 0x51: push(try persistentLoad(try pop())) // BINPERSID
            case 0x52: // REDUCE: only the calls a state dict makes
                let args = try pop(), callable = try pop()
                guard case let .tuple(items, _) = args else { throw PickleError.malformed("REDUCE without an argument tuple at byte \(at)") }
                switch callable {
                case .global(.orderedDict) where items.isEmpty: push(.dict(PickleDict(ordered: true)))
                case .global(.rebuildTensor): push(try PickleValue.rebuildTensor(items))
                case .global(let g): throw PickleError.notAllowed("REDUCE of \(g.qualifiedName) with these arguments")
                default: throw PickleError.notAllowed("REDUCE of a \(callable.kind)")
                }
            case 0x62: // BUILD: an OrderedDict's attributes (PyTorch's `_metadata`), dropped
                let state = try pop()
                guard case let .dict(d) = try top(), d.ordered, case .dict = state else {
                    throw PickleError.notAllowed("BUILD of anything but an OrderedDict's state")
                }
            default:
                throw PickleError.opcode(op, at: at)
            }
        }
    }
}

/// The three Python globals a PyTorch state dict needs; no other name is ever resolved.
enum PickleGlobal: Equatable {
    case orderedDict, rebuildTensor, floatStorage

    init?(module: String, name: String) {
        switch (module, name) {
        case ("collections", "OrderedDict"): self = .orderedDict
        case ("torch._utils", "_rebuild_tensor_v2"): self = .rebuildTensor
        case ("torch", "FloatStorage"): self = .floatStorage
        default: return nil
        }
    }

    var qualifiedName: String {
        switch self {
        case .orderedDict: return "collections.OrderedDict"
        case .rebuildTensor: return "torch._utils._rebuild_tensor_v2"
        case .floatStorage: return "torch.FloatStorage"
        }
    }
}

/// A float32 tensor as `_rebuild_tensor_v2` describes it: a view into a storage.
struct PickleTensor {
    let storage: PickleStorage
    let offset: Int
    let shape: [Int]
    let stride: [Int]
}

/// A storage named by a persistent id: `('storage', torch.FloatStorage, key, location, size, view)`.
struct PickleStorage {
    let key: String
    /// Elements in the root storage the key names.
    let rootCount: Int
    /// Where this (possibly view) storage starts in its root, and how many elements it has.
    let start: Int, count: Int
}

/// A value the machine built: data only.
enum PickleValue {
    case none, bool(Bool), int(Int), float(Double), string(String)
    /// A LONG1 integer's little-endian bytes (the format's magic number).
    case bigInt([UInt8])
    case tuple([PickleValue], depth: Int)
    case list(PickleList)
    case dict(PickleDict)
    case global(PickleGlobal)
    case storage(PickleStorage)
    case tensor(PickleTensor)

    var kind: String {
        switch self {
        case .none: return "None"
        case .bool: return "bool"
        case .int, .bigInt: return "int"
        case .float: return "float"
        case .string: return "str"
        case .tuple: return "tuple"
        case .list: return "list"
        case .dict(let d): return d.ordered ? "OrderedDict" : "dict"
        case .global(let g): return g.qualifiedName
        case .storage: return "storage"
        case .tensor: return "tensor"
        }
    }

    /// Nesting depth: 0 for a scalar, one more than the deepest item for a container.
    var depth: Int {
        switch self {
        case .tuple(_, let d): return d
        case .list(let l): return l.depth
        case .dict(let d): return d.depth
        default: return 0
        }
    }

    /// Freezes the containers among `items` (they are now inside another) and returns the depth
    /// of a container holding them.
    static func depth(containing items: [PickleValue]) throws -> Int {
        var d = 1
        for v in items {
            switch v {
            case .list(let l): l.frozen = true
            case .dict(let x): x.frozen = true
            default: break
            }
            d = max(d, v.depth + 1)
        }
        guard d <= PickleMachine.maxDepth else { throw PickleError.tooDeep(at: nil) }
        return d
    }

    var asInt: Int? { if case let .int(v) = self { return v }; return nil }

    var asInts: [Int]? {
        guard case let .tuple(items, _) = self else { return nil }
        var out: [Int] = []
        for v in items { guard let i = v.asInt else { return nil }; out.append(i) }
        return out
    }

    /// `_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])`.
    static func rebuildTensor(_ args: [PickleValue]) throws -> PickleValue {
        guard (6...7).contains(args.count), case let .storage(storage) = args[0], let offset = args[1].asInt,
              let shape = args[2].asInts, let stride = args[3].asInts, case .bool = args[4] else {
            throw PickleError.notAllowed("REDUCE of torch._utils._rebuild_tensor_v2 with these arguments")
        }
        switch args[5] {
        case .none: break
        case .dict(let d) where d.ordered && d.items.isEmpty: break
        default: throw PickleError.notAllowed("a tensor with backward hooks")
        }
        if args.count == 7 {
            switch args[6] {
            case .none: break
            case .dict(let d) where d.items.isEmpty: break
            default: throw PickleError.notAllowed("a tensor with metadata")
            }
        }
        guard shape.count <= 8, shape.count == stride.count, offset >= 0, let count = checkedProduct(shape) else {
            throw PickleError.malformed("tensor of shape \(shape.prefix(9)) with stride \(stride.prefix(9)) and offset \(offset)")
        }
        // Contiguous row-major only (what torch.save writes for a parameter).
        var expected = 1
        for i in (0..<shape.count).reversed() {
            guard shape[i] == 1 || stride[i] == expected else { throw PickleError.unsupported("a non-contiguous tensor (shape \(shape), stride \(stride))") }
            expected = expected.multipliedReportingOverflow(by: shape[i]).partialValue
        }
        guard offset <= storage.count, count <= storage.count - offset else {
            throw PickleError.malformed("a tensor of \(count) values at offset \(offset) in a storage of \(storage.count)")
        }
        return .tensor(PickleTensor(storage: storage, offset: offset, shape: shape, stride: stride))
    }
}

/// A list the machine is building (shared through the memo, as Python shares it).
final class PickleList {
    private(set) var items: [PickleValue] = []
    private(set) var depth = 1
    var frozen = false

    func append(_ values: [PickleValue]) throws {
        let d = try PickleValue.depth(containing: values)
        guard !frozen else { throw PickleError.notAllowed("changing a list after it was placed in another value") }
        items += values
        depth = max(depth, d)
    }
}

/// A dict or OrderedDict the machine is building; keys are strings or integers, kept in order.
final class PickleDict {
    let ordered: Bool
    private(set) var items: [(key: PickleValue, value: PickleValue)] = []
    private(set) var depth = 1
    var frozen = false

    init(ordered: Bool) { self.ordered = ordered }

    /// Sets alternating keys and values.
    func set(_ flat: [PickleValue]) throws {
        let d = try PickleValue.depth(containing: flat)
        guard !frozen else { throw PickleError.notAllowed("changing a dict after it was placed in another value") }
        for i in stride(from: 0, to: flat.count, by: 2) {
            switch flat[i] {
            case .string, .int: break
            default: throw PickleError.notAllowed("a dict key of type \(flat[i].kind)")
            }
            items.append((flat[i], flat[i + 1]))
        }
        depth = max(depth, d)
    }

    /// The value of a string key (the last one set, as Python keeps it).
    subscript(key: String) -> PickleValue? {
        items.last { if case let .string(k) = $0.key { return k == key }; return false }?.value
    }
}

/// Why a pickle was refused: one line that names the opcode, global or limit.
enum PickleError: Error, CustomStringConvertible {
    case truncated(at: Int)
    case opcode(UInt8, at: Int)
    case global(module: String, name: String)
    case notAllowed(String)
    case memo(index: Int, at: Int)
    case tooDeep(at: Int?)
    case malformed(String)
    case unsupported(String)

    var description: String {
        switch self {
        case let .truncated(at): return "the pickle ends early (byte \(at))"
        case let .opcode(op, at): return "pickle opcode \(Self.opcodeName(op)) (0x\(String(op, radix: 16))) at byte \(at) is not allowed in a checkpoint: only the opcodes of a state dict are read"
        case let .global(module, name): return "pickle global \(quoted(module + " " + name)) is not allowed: a checkpoint may name only collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch.FloatStorage"
        case let .notAllowed(what): return "\(what) is not allowed in a checkpoint pickle"
        case let .memo(i, at): return "pickle memo index \(i) at byte \(at) was never written"
        case let .tooDeep(at): return "the pickle nests deeper than \(PickleMachine.maxDepth)\(at.map { " (byte \($0))" } ?? "")"
        case let .malformed(d): return "malformed pickle: \(d)"
        case let .unsupported(d): return "\(d) is not supported"
        }
    }

    /// Python's names for the opcodes an attacker would use, so the message says what was tried.
    static func opcodeName(_ op: UInt8) -> String {
        switch op {
        case 0x69: return "INST"
        case 0x6F: return "OBJ"
        case 0x81: return "NEWOBJ"
        case 0x92: return "NEWOBJ_EX"
        case 0x82, 0x83, 0x84: return "EXT\([0x82: 1, 0x83: 2, 0x84: 4][op]!)"
        case 0x50: return "PERSID"
        case 0x53: return "STRING"
        case 0x54, 0x55: return op == 0x54 ? "BINSTRING" : "SHORT_BINSTRING"
        case 0x56: return "UNICODE"
        case 0x49: return "INT"
        case 0x4C: return "LONG"
        case 0x8B: return "LONG4"
        case 0x46: return "FLOAT"
        case 0x67: return "GET"
        case 0x70: return "PUT"
        case 0x6C: return "LIST"
        case 0x64: return "DICT"
        case 0x30: return "POP"
        case 0x31: return "POP_MARK"
        case 0x32: return "DUP"
        case 0x8F: return "EMPTY_SET"
        case 0x90: return "ADDITEMS"
        case 0x91: return "FROZENSET"
        case 0x96, 0x97, 0x98: return ["BYTEARRAY8", "NEXT_BUFFER", "READONLY_BUFFER"][Int(op - 0x96)]
        case 0x42, 0x43, 0x8E: return "BINBYTES"
        default: return "unknown"
        }
    }
}
