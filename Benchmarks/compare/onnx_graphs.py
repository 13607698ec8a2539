"""The authors' five networks as ONNX graphs (opset 17), built straight from a checkpoint's
tensors and metadata, so ONNX Runtime can be timed on a machine without PyTorch. Written here
from ../shared/LRUNET-SPEC.md and ../shared/BASELINES-SPEC.md, layer by layer as models.py
writes them for PyTorch (our own code; the PyTorch state-dict names pick the tensors).

    model = build(tensors, meta)                   # any of the five architectures
    model = build(tensors, meta, unrolled=True)    # LruNet with one weight copy per iteration
"""
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


class Graph:
    """Nodes and initializers of one network, with PyTorch's layers as small methods."""

    def __init__(self, w):
        self.w, self.nodes, self.inits, self.used, self.count = w, [], [], set(), 0

    def init(self, name, copy=None):
        key = name if copy is None else f"{name}#{copy}"
        if key not in self.used:
            self.inits.append(numpy_helper.from_array(self.w[name], key))
            self.used.add(key)
        return key

    def const(self, array, prefix):
        self.count += 1
        name = f"{prefix}_{self.count}"
        self.inits.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def node(self, op, inputs, **attrs):
        self.count += 1
        out = f"{op.lower()}_{self.count}"
        self.nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv(self, x, weight, stride=1, pad=0, group=1, bias=None, copy=None):
        k = self.w[weight].shape[2]
        ins = [x, self.init(weight, copy)] + ([self.init(bias)] if bias else [])
        return self.node("Conv", ins, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=group)

    def bn(self, x, prefix):
        return self.node("BatchNormalization", [x] + [self.init(f"{prefix}.{p}") for p in ("weight", "bias", "running_mean", "running_var")],
                         epsilon=1e-5)

    def relu(self, x):
        return self.node("Relu", [x])

    def relu6(self, x):
        return self.node("Clip", [x, self.const(np.float32(0), "zero"), self.const(np.float32(6), "six")])

    def add(self, a, b):
        return self.node("Add", [a, b])

    def concat(self, *xs):
        return self.node("Concat", list(xs), axis=1)

    def gather(self, x, order):
        """Channels reordered: out[i] = in[order[i]]."""
        return self.node("Gather", [x, self.const(np.asarray(order, dtype=np.int64), "order")], axis=1)

    def shuffle(self, x, channels, groups):
        """ShuffleNet's channel shuffle: out[k*g + j] = in[j*(C/g) + k]."""
        per = channels // groups
        return self.gather(x, [(i % groups) * per + i // groups for i in range(channels)])

    def channels(self, x, lo, hi):
        return self.gather(x, list(range(lo, hi)))

    def maxpool(self, x):
        return self.node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])

    def avgpool3(self, x):
        # PyTorch's avg_pool2d(x, 3, 2, 1) counts the zero padding.
        return self.node("AveragePool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1], count_include_pad=1)

    def head(self, x, prefix):
        """Global average pool, flatten, linear."""
        x = self.node("Flatten", [self.node("GlobalAveragePool", [x])], axis=1)
        return self.node("Gemm", [x, self.init(f"{prefix}.weight"), self.init(f"{prefix}.bias")], transB=1)

    def model(self, out, in_ch, classes, name):
        graph = helper.make_graph(self.nodes, name,
                                  [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", in_ch, None, None])],
                                  [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", classes])], self.inits)
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
        model.ir_version = 8
        onnx.checker.check_model(model)
        return model


def lrunet(g, meta, unrolled):
    """With `unrolled`, every iteration gets its own copy of the shared conv weights, which lets
    ONNX Runtime fold each BatchNorm into its conv (it leaves initializers with several consumers alone)."""
    n_reuse, width = int(meta["layer_reuse"]), int(float(meta.get("width_mult", "1")))

    def block(x, stage, planes):
        # LruNet's shuffle: out[2k] = in[C/2 + k], out[2k+1] = in[k]
        order = [planes // 2 + i // 2 if i % 2 == 0 else i // 2 for i in range(planes)]
        res = x
        for i in range(n_reuse):
            copy = i if unrolled else None
            y = g.bn(g.conv(res, f"{stage}.dw.weight", pad=1, group=planes, copy=copy), f"{stage}.dw_bn_list.{i}")
            y = g.bn(g.conv(y, f"{stage}.pw.weight", group=8, copy=copy), f"{stage}.pw_bn_list.{i}")
            y = g.relu(g.add(y, res))
            res = g.gather(y, order) if i != n_reuse - 1 else y
        return res

    cfg = [c * width for c in (64, 128, 256, 512, 256)]
    x = g.relu(g.bn(g.conv("x", "features.0.weight", stride=2, pad=1), "features.1"))
    if width == 2:
        x = g.concat(x, x)
    x = g.maxpool(block(x, "stage1", cfg[0]))
    x = g.concat(x, x)
    x = g.maxpool(block(x, "stage2", cfg[1]))
    x = g.concat(x, x)
    x = block(x, "stage3", cfg[2])
    x = g.concat(x, x)
    x = g.maxpool(block(x, "stage4", cfg[3]))
    x = g.relu(g.bn(g.conv(x, "classifier.0.weight", group=8), "classifier.1"))
    x = g.relu(g.conv(x, "classifier.4.weight", bias="classifier.4.bias"))
    x = g.node("AveragePool", [x], kernel_shape=[2, 2], strides=[1, 1])
    return g.node("Flatten", [x], axis=1)


def mobilenet(g, meta):
    w = float(meta["width_mult"])
    c = int(32 * w)
    x = g.relu(g.bn(g.conv("x", "features.0.0.weight", pad=1), "features.0.1"))
    k = 1
    for ch, n, s in [(64, 1, 2), (128, 2, 2), (256, 2, 1), (512, 6, 2), (1024, 2, 1)]:
        for i in range(n):
            p = f"features.{k}"
            x = g.relu(g.bn(g.conv(x, f"{p}.conv1.weight", stride=s if i == 0 else 1, pad=1, group=c), f"{p}.bn1"))
            x = g.relu(g.bn(g.conv(x, f"{p}.conv2.weight"), f"{p}.bn2"))
            c, k = int(ch * w), k + 1
    return g.head(x, "classifier.1")


def mobilenetv2(g, meta):
    w = float(meta["width_mult"])
    c = int(32 * w)
    x = g.relu6(g.bn(g.conv("x", "features.0.0.weight", pad=1), "features.0.1"))
    k = 1
    for t, ch, n, s in [(1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 1), (6, 96, 3, 1), (6, 160, 3, 2), (6, 320, 1, 1)]:
        for i in range(n):
            p, o, h, stride = f"features.{k}.conv", int(ch * w), c * t, s if i == 0 else 1
            y, j = x, 0
            if t != 1:
                y, j = g.relu6(g.bn(g.conv(y, f"{p}.0.weight"), f"{p}.1")), 3
            y = g.relu6(g.bn(g.conv(y, f"{p}.{j}.weight", stride=stride, pad=1, group=h), f"{p}.{j + 1}"))
            y = g.bn(g.conv(y, f"{p}.{j + 3}.weight"), f"{p}.{j + 4}")
            x = g.add(x, y) if stride == 1 and c == o else y
            c, k = o, k + 1
    x = g.relu6(g.bn(g.conv(x, f"features.{k}.0.weight"), f"features.{k}.1"))
    return g.head(x, "classifier.1")


def shufflenet(g, meta):
    w, groups = float(meta["width_mult"]), int(meta.get("groups", "3"))
    widths = [int(c * w) for c in ((24, 384, 768, 1536) if groups == 8 else (24, 240, 480, 960))]
    x = g.relu(g.bn(g.conv("x", "conv1.weight", pad=1), "bn1"))
    c = widths[0]
    for k, n in enumerate((4, 8, 4)):
        for i in range(n):
            p, out, stride = f"layer{k + 1}.{i}", widths[k + 1], 2 if i == 0 else 1
            o = out - c if i == 0 else out
            mid = (o // (4 * groups)) * groups
            y = g.shuffle(g.relu(g.bn(g.conv(x, f"{p}.conv1.weight", group=groups), f"{p}.bn1")), mid, groups)
            y = g.relu(g.bn(g.conv(y, f"{p}.conv2.weight", stride=stride, pad=1, group=mid), f"{p}.bn2"))
            y = g.bn(g.conv(y, f"{p}.conv3.weight", group=groups), f"{p}.bn3")
            x = g.relu(g.concat(y, g.avgpool3(x)) if stride == 2 else g.add(y, x))
            c = out
    return g.head(x, "linear")


def shufflenetv2(g, meta):
    widths = {0.25: (32, 64, 128, 1024), 0.5: (48, 96, 192, 1024), 0.75: (60, 120, 240, 1024), 1.0: (116, 232, 464, 1024),
              1.5: (176, 352, 704, 1024), 2.0: (224, 488, 976, 2048)}[float(meta["width_mult"])]
    x = g.relu(g.bn(g.conv("x", "conv1.weight", pad=1), "bn1"))
    c = 24
    for k, n in enumerate((3, 7, 3)):
        p, o = f"layer{k + 1}.0", widths[k]
        m = o // 2
        left = g.relu(g.bn(g.conv(g.bn(g.conv(x, f"{p}.conv1.weight", stride=2, pad=1, group=c), f"{p}.bn1"), f"{p}.conv2.weight"), f"{p}.bn2"))
        right = g.relu(g.bn(g.conv(x, f"{p}.conv3.weight"), f"{p}.bn3"))
        right = g.bn(g.conv(right, f"{p}.conv4.weight", stride=2, pad=1, group=m), f"{p}.bn4")
        right = g.relu(g.bn(g.conv(right, f"{p}.conv5.weight"), f"{p}.bn5"))
        x, c = g.shuffle(g.concat(left, right), o, 2), o
        for i in range(1, n + 1):
            p, h = f"layer{k + 1}.{i}", c // 2
            y = g.relu(g.bn(g.conv(g.channels(x, h, c), f"{p}.conv1.weight"), f"{p}.bn1"))
            y = g.bn(g.conv(y, f"{p}.conv2.weight", pad=1, group=h), f"{p}.bn2")
            y = g.relu(g.bn(g.conv(y, f"{p}.conv3.weight"), f"{p}.bn3"))
            x = g.shuffle(g.concat(g.channels(x, 0, h), y), c, 2)
    x = g.relu(g.bn(g.conv(x, "conv2.weight"), "bn2"))
    return g.head(x, "linear")


def build(w, meta, unrolled=False):
    """The checkpoint's network as an ONNX model; returns (model, in_channels, classes)."""
    arch, in_ch, classes = meta["arch"], int(meta["in_channels"]), int(meta["num_classes"])
    g = Graph(w)
    if arch == "lrunet":
        out = lrunet(g, meta, unrolled)
    elif arch in ("mobilenet", "mobilenetv2", "shufflenet", "shufflenetv2"):
        out = globals()[arch](g, meta)
    else:
        raise SystemExit(f"unknown arch {arch}")
    return g.model(out, in_ch, classes, arch), in_ch, classes
