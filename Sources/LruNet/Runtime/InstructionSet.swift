import CLruNetKernels
#if canImport(Glibc)
import Glibc
#endif

/// The instruction set the engine's hot kernels run on.
///
/// The kernels (depthwise, the register-blocked 1x1 and its epilogues, BatchNorm, pooling, the
/// reuse tiles and training's fused kernels) are compiled for every set in one binary, and the
/// best one the CPU reports is chosen on first use. No compiler flag is involved, so a package
/// that depends on LruNet gets the same code as the `lrunet` binary.
///
/// Set `LRUNET_ISA=baseline|avx2|avx512` to force a path; asking for one the CPU lacks is an
/// error when the first model is built.
public enum InstructionSet: String, CaseIterable, Sendable, CustomStringConvertible {
    /// Portable vectors, a multiply then an add: every x86-64 (SSE2) and other CPUs.
    case baseline
    /// AVX2 with FMA: 8 lanes, 16 registers.
    case avx2
    /// AVX-512 F, BW, VL and DQ: 16 lanes, 32 registers.
    case avx512

    /// The C side's code for the set: the one of lrunet_kernels.h's LRU_ISA_LIST with this name.
    var code: Int32 {
        (0..<Int32(LRU_ISA_COUNT)).first { String(cString: lru_isa_name($0)) == rawValue } ?? Int32(LRU_ISA_BASELINE)
    }

    public var description: String { rawValue }

    /// Whether this CPU (and its OS) can run the set.
    public var isSupported: Bool { lru_isa_supported(code) != 0 }

    /// Floats per vector.
    public var lanes: Int { Int(lru_isa_lanes(code)) }

    /// The fastest set this CPU supports.
    public static var best: InstructionSet { InstructionSet(code: lru_isa_best()) }

    /// Every set this CPU supports.
    public static var supported: [InstructionSet] { allCases.filter(\.isSupported) }

    /// The set the kernels run on now: `LRUNET_ISA` if set (and supported), else ``best``,
    /// unless ``use(_:)`` chose another.
    public static var active: InstructionSet { InstructionSet(code: lru_isa_active()) }

    /// The CPU as the kernels see it: vendor, family, model and the features that matter here.
    public static var cpuDescription: String { String(cString: lru_cpu_description()) }

    /// Makes the kernels run on `set` from now on (for every model in the process).
    /// - Throws: ``InstructionSetError/unsupported(_:cpu:)`` if the CPU lacks it.
    public static func use(_ set: InstructionSet) throws {
        guard lru_isa_select(set.code) == 0 else { throw InstructionSetError.unsupported(set, cpu: cpuDescription) }
    }

    /// The set a C code stands for; a test-only path (avx2-w16) counts as the set it runs on.
    init(code: Int32) {
        self = InstructionSet.allCases.first { $0.code == code } ?? (code == Int32(LRU_ISA_AVX2_W16) ? .avx2 : .baseline)
    }

    /// `LRUNET_ISA` checked once per process. (The kernels themselves start on the set it names
    /// when the CPU has it, whatever runs first.)
    private static let environmentChoice: Result<InstructionSet?, InstructionSetError> = {
        guard let raw = getenv("LRUNET_ISA").map({ String(cString: $0) }), !raw.isEmpty else { return .success(nil) }
        guard let set = InstructionSet(rawValue: raw.lowercased()) else { return .failure(.unknown(raw)) }
        guard set.isSupported else { return .failure(.unsupported(set, cpu: cpuDescription)) }
        return .success(set)
    }()

    /// Throws if `LRUNET_ISA` names no set or one this CPU lacks; model constructors call this,
    /// so a bad value is a clear error rather than a silent fallback.
    public static func checkEnvironment() throws { _ = try environmentChoice.get() }
}

/// A path that cannot be used.
public enum InstructionSetError: Error, CustomStringConvertible, Equatable {
    /// `LRUNET_ISA` names no known set.
    case unknown(String)
    /// The CPU lacks the set.
    case unsupported(InstructionSet, cpu: String)

    public var description: String {
        switch self {
        case .unknown(let raw):
            return "LRUNET_ISA=\(raw) is not an instruction set; use baseline, avx2 or avx512"
        case let .unsupported(set, cpu):
            let needs = set == .avx512 ? "AVX-512 F/BW/VL/DQ" : "AVX2 and FMA"
            return "the \(set) kernels need \(needs), which this CPU lacks (\(cpu)); supported here: \(InstructionSet.supported.map(\.rawValue).joined(separator: ", "))"
        }
    }
}

/// Every kernel path this CPU can run, including the test-only one that runs the AVX-512
/// path's 16-lane code on AVX2. Tests switch between them with ``select()``.
struct KernelPath: CustomStringConvertible {
    let code: Int32
    var description: String { String(cString: lru_isa_name(code)) }
    var lanes: Int { Int(lru_isa_lanes(code)) }

    static var available: [KernelPath] {
        (0..<Int32(LRU_ISA_COUNT)).filter { lru_isa_supported($0) != 0 }.map(KernelPath.init)
    }
    static var active: KernelPath { KernelPath(code: lru_isa_active()) }

    func select() { precondition(lru_isa_select(code) == 0, "kernel path \(self) is not supported here") }

    /// Runs `body` on this path, then restores the path that was active.
    func run<T>(_ body: () throws -> T) rethrows -> T {
        let before = KernelPath.active
        select()
        defer { before.select() }
        return try body()
    }
}
