/// The shape of an activation inside the engine.
///
/// Internally activations are stored channel-major, `[C][N][H][W]` ("CNHW"):
/// each channel is one contiguous row of `N*H*W` values. That makes a 1x1
/// (grouped) convolution over the whole batch one `sgemm` per group, and batch
/// norm a pass over contiguous rows. The public API speaks NCHW.
public struct ActivationShape: Equatable, CustomStringConvertible, Sendable {
    public var channels: Int
    public var batch: Int
    public var height: Int
    public var width: Int

    public init(channels: Int, batch: Int, height: Int, width: Int) {
        self.channels = channels; self.batch = batch; self.height = height; self.width = width
    }

    /// Values in one channel row: `N*H*W`.
    public var rowLength: Int { batch * height * width }
    /// Values in one image plane: `H*W`.
    public var plane: Int { height * width }
    public var count: Int { channels * batch * height * width }

    /// PyTorch-style `[N, C, H, W]` text.
    public var description: String { "[\(batch), \(channels), \(height), \(width)]" }
    /// Per-image shape `C x H x W`, as `lrunet info` prints it.
    public var perImage: String { "\(channels)x\(height)x\(width)" }
}

/// Copies an NCHW tensor into the engine's CNHW layout.
func nchwToCnhw(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, n: Int, c: Int, plane: Int) {
    for i in 0..<n {
        for ch in 0..<c {
            (dst + (ch * n + i) * plane).update(from: src + (i * c + ch) * plane, count: plane)
        }
    }
}

/// Copies a CNHW tensor back into NCHW.
func cnhwToNchw(_ src: UnsafePointer<Float>, _ dst: UnsafeMutablePointer<Float>, n: Int, c: Int, plane: Int) {
    for i in 0..<n {
        for ch in 0..<c {
            (dst + (i * c + ch) * plane).update(from: src + (ch * n + i) * plane, count: plane)
        }
    }
}
