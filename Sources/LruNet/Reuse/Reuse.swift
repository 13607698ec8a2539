/// Layer reuse (Kopuklu et al., ICIP 2019): the body applied `times` times, each application to
/// the previous one's output, with **one** copy of the weights the applications share.
///
/// The builder is called once per application with its index. A tensor whose name is the same
/// in every application is shared (one copy, its gradient summed over the applications, fetched
/// once per pass by the parameter cache); a name that contains the index is the application's
/// own, as the paper's per-iteration BatchNorm:
///
/// ```swift
/// Reuse(times: 4) { i in
///     Residual(activation: .relu) {
///         Conv2d(32, 32, kernelSize: 3, padding: 1, bias: false).named("conv")   // shared
///         BatchNorm2d(32).named("bn.\(i)")                                       // one per application
///     }.named("")
/// }.named("block")
/// ```
///
/// The body's output must have its input's shape. A body that is the paper's block (see
/// ``Reuse/lruNetBlock(planes:times:)``) runs on the fused, tiled kernels; any other body runs
/// on the general operators.
public struct Reuse: Module {
    /// What the builder gave for each application.
    public let bodies: [Graph]

    public init(times: Int, @ModuleBuilder _ body: (_ application: Int) -> [Graph]) {
        bodies = (0..<max(times, 0)).map { Graph(.sequence(body($0)), name: "") }
    }

    public var times: Int { bodies.count }
    public var graph: Graph { Graph(.reuse(bodies: bodies)) }

    /// The paper's reused block on `planes` channels: a depthwise 3x3 conv with channel
    /// multiplier 2 (`dw`) and a 1x1 conv in 8 groups (`pw`) shared by every application, a
    /// BatchNorm pair per application (`dw_bn_list.i`, `pw_bn_list.i`), the residual add and
    /// ReLU, and the half-swapping 2-group shuffle between applications (LRUNET-SPEC.md).
    public static func lruNetBlock(planes: Int, times n: Int) -> Reuse {
        Reuse(times: n) { i in
            Residual(activation: .relu) {
                Conv2d(planes, 2 * planes, kernelSize: 3, padding: 1, groups: planes, bias: false).named("dw")
                BatchNorm2d(2 * planes).named("dw_bn_list.\(i)")
                Conv2d(2 * planes, planes, kernelSize: 1, groups: 8, bias: false).named("pw")
                BatchNorm2d(planes).named("pw_bn_list.\(i)")
            }.named("")
            if i < n - 1 { ChannelShuffle(groups: 2, swapHalves: true) }
        }
    }
}
