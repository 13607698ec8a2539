import Foundation

/// This release of the engine: what `lrunet --version` prints and `CITATION.cff` cites.
public enum LruNetVersion {
    public static let string = "0.9.0"
}

// Every error the library throws is one line fit for a command line; Foundation's
// `localizedDescription` gives the same line.
extension IOError: LocalizedError { public var errorDescription: String? { description } }
extension ModelError: LocalizedError { public var errorDescription: String? { description } }
extension ImportError: LocalizedError { public var errorDescription: String? { description } }
extension PlanError: LocalizedError { public var errorDescription: String? { description } }
extension TrainingError: LocalizedError { public var errorDescription: String? { description } }
extension InstructionSetError: LocalizedError { public var errorDescription: String? { description } }
