/// A piece of a network description: a layer such as ``Conv2d``, or a composition such as
/// ``Sequential``, ``Residual``, ``Concat`` or ``Reuse``. Modules are values; a ``Network``
/// compiles the one you give it into an execution plan.
///
/// Write your own module as a function or a type that returns a composition:
///
/// ```swift
/// struct ConvBNReLU: Module {
///     let input: Int, output: Int
///     var graph: Graph {
///         Sequential {
///             Conv2d(input, output, kernelSize: 3, padding: 1, bias: false)
///             BatchNorm2d(output)
///             ReLU()
///         }.graph
///     }
/// }
/// ```
///
/// **Names.** Every tensor gets a PyTorch state-dict key from the path of names down to it. A
/// module's name is the one given with ``Module/named(_:)``, or else its position in its
/// container (as in `nn.Sequential`: `features.0.weight`). A module named `""` adds no level:
/// its children are named as if they were its parent's.
public protocol Module {
    /// The description this module stands for.
    var graph: Graph { get }
}

extension Module {
    /// This module under `name` in its container (a PyTorch attribute name such as `"stage1"`
    /// or `"dw_bn_list.3"`); `""` puts its children directly in the container's scope.
    public func named(_ name: String) -> Graph {
        var g = graph
        g.name = name
        return g
    }
}

/// The compiled form of a ``Module``: what the network compiler reads. Build it from modules;
/// two graphs are equal when they describe the same computation with the same names.
public struct Graph: Module, Equatable, Sendable {
    indirect enum Node: Equatable, Sendable {
        case conv(Conv2d)
        case linear(Linear)
        case batchNorm(channels: Int)
        case activation(Activation)
        case pool(Pool)
        case globalAveragePool
        case dropout(Float)
        case shuffle(ChannelShuffle)
        case identity
        case sequence([Graph])
        case residual([Graph], activation: Activation)
        case concat(Concat.Input, left: Graph, right: Graph)
        /// One body per application: `bodies[i]` is what the body builder gave for `i`.
        case reuse(bodies: [Graph])
    }

    let node: Node
    var name: String?

    init(_ node: Node, name: String? = nil) { self.node = node; self.name = name }

    public var graph: Graph { self }
}

/// Collects the modules written in a ``Sequential``, ``Residual`` or ``Reuse`` body, with
/// `if`, `if`/`else` and `for` as in any result builder.
@resultBuilder
public enum ModuleBuilder {
    public static func buildExpression(_ module: some Module) -> [Graph] { [module.graph] }
    public static func buildBlock(_ parts: [Graph]...) -> [Graph] { parts.flatMap { $0 } }
    public static func buildOptional(_ part: [Graph]?) -> [Graph] { part ?? [] }
    public static func buildEither(first part: [Graph]) -> [Graph] { part }
    public static func buildEither(second part: [Graph]) -> [Graph] { part }
    public static func buildArray(_ parts: [[Graph]]) -> [Graph] { parts.flatMap { $0 } }
}
