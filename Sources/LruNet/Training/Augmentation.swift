import Foundation

/// The authors' training transform: `RandomCrop(size, padding=4)`,
/// `RandomRotation(10)` (nearest neighbour, zero fill), `RandomHorizontalFlip()`,
/// applied as one inverse mapping per output pixel, with a seeded generator.
///
/// Their code crops Fashion-MNIST's 28x28 images to 32x32 for training while
/// testing on 28x28; ``cropSize`` chooses (the engine defaults to the input size).
public struct Augmentation: Sendable, Equatable {
    /// Output side of the random crop; `nil` keeps the input size.
    public var cropSize: Int?
    public var padding: Int
    /// Rotations are uniform in [-degrees, degrees].
    public var rotationDegrees: Float
    public var horizontalFlip: Bool

    public init(cropSize: Int? = nil, padding: Int = 4, rotationDegrees: Float = 10, horizontalFlip: Bool = true) {
        self.cropSize = cropSize; self.padding = padding; self.rotationDegrees = rotationDegrees; self.horizontalFlip = horizontalFlip
    }

    /// No augmentation: images pass through unchanged.
    public static let none = Augmentation(cropSize: nil, padding: 0, rotationDegrees: 0, horizontalFlip: false)

    public var isIdentity: Bool { padding == 0 && rotationDegrees == 0 && !horizontalFlip }

    /// The side of the images this transform produces from `inputSide`.
    public func outputSide(_ inputSide: Int) -> Int { cropSize ?? inputSide }

    /// Transforms one `[channels][h][w]` image into `[channels][s][s]`, s = ``outputSide(_:)``.
    func apply(_ src: UnsafePointer<Float>, channels: Int, height h: Int, width w: Int,
               into dst: UnsafeMutablePointer<Float>, rng: inout SplitMix64) {
        let s = cropSize ?? max(h, w)
        if isIdentity && s == h && s == w {
            dst.update(from: src, count: channels * h * w)
            return
        }
        // Crop offset within the zero-padded image, then map back to source coordinates.
        let top = padding * 2 + h - s >= 0 ? rng.nextInt(padding * 2 + h - s + 1) - padding : -(s - h) / 2
        let left = padding * 2 + w - s >= 0 ? rng.nextInt(padding * 2 + w - s + 1) - padding : -(s - w) / 2
        let angle = rotationDegrees > 0 ? (2 * rng.nextUniform() - 1) * rotationDegrees * .pi / 180 : 0
        let flip = horizontalFlip && rng.nextUniform() < 0.5
        let c = Float(s - 1) / 2
        let cosA = Foundation.cos(angle), sinA = Foundation.sin(angle)
        for y in 0..<s {
            for x in 0..<s {
                let xf = Float(flip ? s - 1 - x : x) - c, yf = Float(y) - c
                // Inverse rotation: where in the cropped image this pixel comes from.
                let u = Int((cosA * xf + sinA * yf + c).rounded()), v = Int((-sinA * xf + cosA * yf + c).rounded())
                let sy = v + top, sx = u + left
                let inside = u >= 0 && u < s && v >= 0 && v < s && sy >= 0 && sy < h && sx >= 0 && sx < w
                for ch in 0..<channels {
                    dst[(ch * s + y) * s + x] = inside ? src[(ch * h + sy) * w + sx] : 0
                }
            }
        }
    }
}

/// Seeds derived from (run seed, epoch, purpose), so that any epoch can be replayed
/// exactly: this is what makes `--resume` reproduce an uninterrupted run.
enum SeedStream {
    static func seed(_ base: UInt64, _ epoch: Int, _ purpose: UInt64, _ step: Int = 0) -> UInt64 {
        var g = SplitMix64(seed: base ^ (UInt64(epoch) &* 0x9E37_79B9_7F4A_7C15) ^ (purpose &* 0xD1B5_4A32_D192_ED03) ^ (UInt64(step) &* 0x94D0_49BB_1331_11EB))
        return g.next()
    }

    /// A seeded Fisher-Yates permutation of `0..<count` for one epoch.
    static func permutation(_ count: Int, seed: UInt64) -> [Int] {
        var rng = SplitMix64(seed: seed)
        var p = Array(0..<count)
        for i in stride(from: count - 1, to: 0, by: -1) { p.swapAt(i, rng.nextInt(i + 1)) }
        return p
    }
}
