/// A network description that cannot be built, found before any memory is allocated.
public enum GraphError: Error, Equatable, CustomStringConvertible {
    /// A module's arguments are out of range (`module` is its state-dict path).
    case invalidModule(module: String, problem: String)
    /// Two modules declare the same tensor outside the applications of one ``Reuse``.
    case duplicateTensor(name: String)
    /// The applications of a ``Reuse`` share a tensor name with different shapes.
    case sharedShapeMismatch(name: String, first: [Int], then: [Int])

    public var description: String {
        switch self {
        case let .invalidModule(module, problem): return "network description: \(module.isEmpty ? "the root" : module): \(problem)"
        case let .duplicateTensor(name):
            return "network description: two modules declare \(quoted(name)); only the applications of one Reuse share a tensor (give one of them another name)"
        case let .sharedShapeMismatch(name, first, then):
            return "network description: the applications of a Reuse declare \(quoted(name)) as \(first) and as \(then)"
        }
    }
}

/// Lowers a ``Graph`` to the plan's layers, declaring every tensor in the parameter store under
/// its PyTorch name. Pattern selection happens here: a ``Reuse`` whose body is the paper's block
/// becomes a ``ReuseBlock`` (fused, tiled kernels); any other body is applied by unrolling the
/// general layers over one shared copy of its weights.
struct GraphCompiler {
    let store: ParameterStore
    /// Off, every Reuse runs on the general operators (the reference for the fused block).
    var selectsPatterns = true
    /// Each tensor's first declaration: the enclosing Reuse applications (id, index) and shape.
    private var owners: [String: (applications: [(id: Int, index: Int)], shape: [Int])] = [:]
    private var applications: [(id: Int, index: Int)] = []
    private var reuses = 0

    init(store: ParameterStore) { self.store = store }

    /// The layers of `graph` at the root scope.
    static func layers(_ graph: Graph, store: ParameterStore, selectsPatterns: Bool = true) throws -> [Layer] {
        var compiler = GraphCompiler(store: store)
        compiler.selectsPatterns = selectsPatterns
        if case .sequence(let items) = graph.node, (graph.name ?? "").isEmpty { return try compiler.lower(items, scope: "") }
        return try compiler.lower(graph, path: graph.name ?? "").map { [$0] } ?? []
    }

    /// A child's path: its name, or its position; `""` adds no level.
    static func path(_ scope: String, _ child: Graph, position: Int) -> String {
        let key = child.name ?? String(position)
        return key.isEmpty ? scope : scope.isEmpty ? key : "\(scope).\(key)"
    }

    /// The layers of a sequence. A nested sequence is spliced in (the same computation), so
    /// the fusion rules see neighbours across the description's nesting.
    private mutating func lower(_ items: [Graph], scope: String) throws -> [Layer] {
        var layers: [Layer] = []
        for (i, g) in items.enumerated() {
            switch try lower(g, path: Self.path(scope, g, position: i)) {
            case let sequence as SequenceLayer: layers += sequence.layers
            case let layer?: layers.append(layer)
            case nil: break
            }
        }
        return layers
    }

    /// The layer for one module (nil for an identity).
    private mutating func lower(_ g: Graph, path: String) throws -> Layer? {
        func bad(_ problem: String) -> GraphError { .invalidModule(module: path, problem: problem) }
        let mark = store.declarations.count
        let layer: Layer?
        switch g.node {
        case .conv(let c):
            guard c.inputChannels >= 1, c.outputChannels >= 1 else { throw bad("channels must be positive") }
            guard c.kernelSize >= 1, c.stride >= 1, c.padding >= 0 else { throw bad("kernel and stride must be positive, padding not negative") }
            guard c.groups >= 1, c.inputChannels % c.groups == 0, c.outputChannels % c.groups == 0 else {
                throw bad("groups \(c.groups) must divide \(c.inputChannels) input and \(c.outputChannels) output channels")
            }
            layer = c.isDepthwise
                ? DepthwiseLayer(name: path, store: store, channels: c.inputChannels, multiplier: c.outputChannels / c.inputChannels,
                                 kernelSize: c.kernelSize, stride: c.stride, padding: c.padding)
                : Conv2dLayer(name: path, store: store, inputChannels: c.inputChannels, outputChannels: c.outputChannels,
                              kernelSize: c.kernelSize, stride: c.stride, padding: c.padding, groups: c.groups, bias: c.bias)
        case .linear(let l):
            guard l.inputFeatures >= 1, l.outputFeatures >= 1 else { throw bad("features must be positive") }
            layer = LinearLayer(name: path, store: store, inputFeatures: l.inputFeatures, outputFeatures: l.outputFeatures, bias: l.bias)
        case .batchNorm(let channels):
            guard channels >= 1 else { throw bad("channels must be positive") }
            layer = BatchNormLayer(name: path, store: store, channels: channels)
        case .activation(let a):
            guard a != .none else { throw bad("no activation named") }
            layer = ActivationLayer(name: path, kind: a.kind)
        case .pool(let p):
            guard p.kernelSize >= 1, p.stride >= 1, p.padding >= 0, 2 * p.padding <= p.kernelSize else {
                throw bad("pooling needs a positive kernel and stride, and padding at most half the kernel")
            }
            layer = PoolLayer(name: path, mode: p.mode == .max ? .max : .average, kernelSize: p.kernelSize, stride: p.stride, padding: p.padding)
        case .globalAveragePool:
            layer = GlobalPoolLayer(name: path)
        case .dropout(let p):
            guard p >= 0 && p < 1 else { throw bad("dropout probability \(p) is not in [0, 1)") }
            layer = DropoutLayer(name: path, probability: p)
        case .shuffle(let s):
            guard s.groups >= 1 else { throw bad("groups must be positive") }
            guard !s.swapHalves || s.groups == 2 else { throw bad("swapHalves needs 2 groups") }
            layer = ShuffleLayer(name: path, kind: s.swapHalves ? .lruNetHalfSwap : .groups(s.groups))
        case .identity:
            layer = nil
        case .sequence(let items):
            layer = SequenceLayer(path, try lower(items, scope: path))
        case let .residual(body, activation):
            layer = ResidualLayer(Self.join(path, "add"), body: SequenceLayer(path, try lower(body, scope: path)), activation: activation.kind)
        case let .concat(input, left, right):
            if input == .fork, left.node == .identity, right.node == .identity {
                layer = ConcatSelfLayer(name: path)           // torch.cat([x, x], 1)
            } else {
                layer = ConcatLayer(Self.join(path, input == .split ? "split" : "cat"), input: input == .split ? .split : .fork,
                                    left: try lower(left, path: Self.path(path, left, position: 0)),
                                    right: try lower(right, path: Self.path(path, right, position: 1)))
            }
        case .reuse(let bodies):
            guard !bodies.isEmpty else { throw bad("a Reuse needs at least one application") }
            if selectsPatterns, let planes = Self.lruNetBlockPlanes(bodies) {
                guard planes >= 8, planes % 8 == 0 else { throw bad("the reused block needs planes divisible by 8, got \(planes)") }
                layer = ReuseBlock(name: path, store: store, planes: planes, iterations: bodies.count)
            } else {
                reuses += 1
                let id = reuses
                var unrolled: [Layer] = []
                for (i, body) in bodies.enumerated() {
                    applications.append((id, i))
                    defer { applications.removeLast() }
                    if let l = try lower(body, path: path) { unrolled.append(l) }
                }
                layer = SequenceLayer(path, unrolled)
            }
        }
        // A leaf's (or a fused block's) own tensors; a container's children claimed theirs.
        if !(layer is SequenceLayer || layer is ResidualLayer || layer is ConcatLayer) { try claim(store.declarations[mark...]) }
        return layer
    }

    /// Accepts the tensors a module just declared: new names, or names first declared in
    /// another application of an enclosing Reuse with the same shape (shared weights).
    private mutating func claim(_ declared: ArraySlice<(index: Int, shape: [Int])>) throws {
        for d in declared {
            let name = store.entries[d.index].name
            guard let first = owners[name] else {
                owners[name] = (applications, d.shape)
                continue
            }
            let shared = zip(first.applications, applications).contains { $0.id == $1.id && $0.index != $1.index }
            guard shared else { throw GraphError.duplicateTensor(name: name) }
            guard first.shape == d.shape else { throw GraphError.sharedShapeMismatch(name: name, first: first.shape, then: d.shape) }
        }
    }

    private static func join(_ path: String, _ suffix: String) -> String { path.isEmpty ? suffix : "\(path).\(suffix)" }

    /// The planes of a Reuse whose bodies are exactly ``Reuse/lruNetBlock(planes:times:)``'s.
    static func lruNetBlockPlanes(_ bodies: [Graph]) -> Int? {
        guard case .sequence(let items)? = bodies.first?.node, case .residual(let body, _)? = items.first?.node,
              case .conv(let dw)? = body.first?.node else { return nil }
        return Reuse.lruNetBlock(planes: dw.inputChannels, times: bodies.count).bodies == bodies ? dw.inputChannels : nil
    }
}
