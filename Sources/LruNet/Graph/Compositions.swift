/// Modules applied one after another, named by position unless they have names (`nn.Sequential`).
public struct Sequential: Module {
    public let modules: [Graph]
    public init(@ModuleBuilder _ modules: () -> [Graph]) { self.modules = modules() }
    public init(_ modules: [any Module]) { self.modules = modules.map(\.graph) }
    public var graph: Graph { Graph(.sequence(modules)) }
}

/// `activation(body(x) + x)`: the body's output must have the input's shape. Backward sums the
/// gradients of the two paths. Like any module it is a naming level (its body is named under
/// its name or position); name it `""` to put its body in the enclosing scope.
public struct Residual: Module {
    public let body: [Graph]
    public let activation: Activation
    public init(activation: Activation = .none, @ModuleBuilder _ body: () -> [Graph]) {
        self.body = body(); self.activation = activation
    }
    public var graph: Graph { Graph(.residual(body, activation: activation)) }
}

/// Two branches joined along channels: `[left, right]`. Both branches read the whole input
/// (`.fork`), or the left the first half of its channels and the right the second (`.split`,
/// ShuffleNetV2's channel split). The branches' maps must agree in size.
public struct Concat: Module {
    public enum Input: Equatable, Sendable { case fork, split }
    public let input: Input
    public let left: Graph, right: Graph
    public init(_ input: Input, _ left: some Module, _ right: some Module) {
        self.input = input; self.left = left.graph; self.right = right.graph
    }
    public var graph: Graph { Graph(.concat(input, left: left, right: right)) }
}
