import Foundation

/// Finds the authors' published checkpoints.
///
/// Looks in `$LRUNET_PRETRAINED`, then `../shared/pretrained` and `shared/pretrained`
/// relative to the working directory. Checkpoints are data: the project never
/// ships copies of them.
public enum Pretrained {
    /// The environment variable naming the checkpoint directory.
    public static let environmentVariable = "LRUNET_PRETRAINED"

    /// Candidate directories, in search order, that exist.
    public static var directories: [String] {
        var dirs: [String] = []
        if let env = ProcessInfo.processInfo.environment[environmentVariable], !env.isEmpty { dirs.append(env) }
        dirs += ["../shared/pretrained", "shared/pretrained"]
        return dirs.filter { FileManager.default.fileExists(atPath: $0) }
    }

    /// The first directory holding checkpoints, if any.
    public static var directory: String? { directories.first }

    /// A path as given if the file exists; otherwise a checkpoint of that name (with or
    /// without `.safetensors`) in the pretrained directories; otherwise the path unchanged,
    /// so that opening it reports the missing file.
    public static func resolve(_ nameOrPath: String) -> String {
        if FileManager.default.fileExists(atPath: nameOrPath) { return nameOrPath }
        guard !nameOrPath.contains("/") else { return nameOrPath }
        for dir in directories {
            for name in [nameOrPath, nameOrPath + ".safetensors"] {
                let p = (dir as NSString).appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: p) { return p }
            }
        }
        return nameOrPath
    }
}
