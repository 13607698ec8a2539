"""ONNX Runtime on the same LruNet checkpoint, for `make bench-compare`.

Builds the authors' network as an ONNX graph straight from a safetensors checkpoint (the
shared conv weights are one initializer each, referenced by every iteration), checks that
ONNX Runtime's logits match `lrunet predict` on the same images, then times ONNX Runtime
at batch 1, 64 and 256 and writes the figures as JSON for `lrunet-bench --compare`.

    python ort_lrunet.py --weights CKPT.safetensors --lrunet .build/release/lrunet --threads 2 --json out.json
"""
import argparse
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper


def read_safetensors(path):
    with open(path, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    tensors = {}
    for name, t in header.items():
        if t["dtype"] != "F32":
            raise SystemExit(f"{path}: {name} is {t['dtype']}, expected F32")
        lo, hi = t["data_offsets"]
        tensors[name] = np.frombuffer(data[lo:hi], dtype=np.float32).reshape(t["shape"])
    return tensors, meta


def build_graph(w, meta, unrolled=False):
    """The authors' LruNet (models/lrunet.py) in ONNX operators, opset 17. With `unrolled`, every
    iteration gets its own copy of the shared conv weights, which lets ONNX Runtime fold each
    BatchNorm into its conv (it leaves initializers with several consumers alone)."""
    n_reuse = int(meta["layer_reuse"])
    in_ch, classes = int(meta["in_channels"]), int(meta["num_classes"])
    width = int(meta.get("width_mult", "1"))
    nodes, inits = [], []
    used = set()
    counter = [0]

    def init(name, copy=None):
        key = name if copy is None else f"{name}#{copy}"
        if key not in used:
            inits.append(numpy_helper.from_array(w[name], key))
            used.add(key)
        return key

    def fresh(prefix):
        counter[0] += 1
        return f"{prefix}_{counter[0]}"

    def node(op, inputs, **attrs):
        out = fresh(op.lower())
        nodes.append(helper.make_node(op, inputs, [out], **attrs))
        return out

    def conv(x, weight, stride=1, pad=0, group=1, bias=None, copy=None):
        k = w[weight].shape[2]
        ins = [x, init(weight, copy)] + ([init(bias)] if bias else [])
        return node("Conv", ins, kernel_shape=[k, k], strides=[stride, stride], pads=[pad] * 4, group=group)

    def bn(x, prefix):
        return node("BatchNormalization", [x] + [init(f"{prefix}.{p}") for p in ("weight", "bias", "running_mean", "running_var")],
                    epsilon=1e-5)

    def concat_self(x):
        return node("Concat", [x, x], axis=1)

    def maxpool(x):
        return node("MaxPool", [x], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])

    def block(x, stage, planes):
        # out[2k] = in[C/2 + k], out[2k+1] = in[k]
        order = np.array([planes // 2 + i // 2 if i % 2 == 0 else i // 2 for i in range(planes)], dtype=np.int64)
        shuffle = f"{stage}.shuffle"
        inits.append(numpy_helper.from_array(order, shuffle))
        res = x
        for i in range(n_reuse):
            copy = i if unrolled else None
            y = bn(conv(res, f"{stage}.dw.weight", pad=1, group=planes, copy=copy), f"{stage}.dw_bn_list.{i}")
            y = bn(conv(y, f"{stage}.pw.weight", group=8, copy=copy), f"{stage}.pw_bn_list.{i}")
            y = node("Relu", [node("Add", [y, res])])
            res = node("Gather", [y, shuffle], axis=1) if i != n_reuse - 1 else y
        return res

    cfg = [c * width for c in (64, 128, 256, 512, 256)]
    x = node("Relu", [bn(conv("x", "features.0.weight", stride=2, pad=1), "features.1")])
    if width == 2:
        x = concat_self(x)
    x = concat_self(maxpool(block(x, "stage1", cfg[0])))
    x = concat_self(maxpool(block(x, "stage2", cfg[1])))
    x = concat_self(block(x, "stage3", cfg[2]))
    x = maxpool(block(x, "stage4", cfg[3]))
    x = node("Relu", [bn(conv(x, "classifier.0.weight", group=8), "classifier.1")])
    x = node("Relu", [conv(x, "classifier.4.weight", bias="classifier.4.bias")])
    x = node("AveragePool", [x], kernel_shape=[2, 2], strides=[1, 1])
    out = node("Flatten", [x], axis=1)
    graph = helper.make_graph(nodes, "lrunet",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", in_ch, None, None])],
                              [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", classes])], inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model, in_ch, classes


def median_rate(run, images, repeats, runs=5):
    run()  # warm-up
    rates = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(repeats):
            run()
        rates.append(images * repeats / (time.perf_counter() - t))
    return sorted(rates)[len(rates) // 2]


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", required=True)
    p.add_argument("--lrunet", required=True, help="the lrunet binary, for the parity check")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--side", type=int, default=28)
    p.add_argument("--json", required=True)
    a = p.parse_args()

    w, meta = read_safetensors(a.weights)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    sessions = {}
    for variant in ("shared", "unrolled"):
        model, in_ch, classes = build_graph(w, meta, unrolled=variant == "unrolled")
        sessions[variant] = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])

    # Parity: the same 64 images through ONNX Runtime and through `lrunet predict`.
    rng = np.random.default_rng(7)
    x = rng.random((64, in_ch, a.side, a.side), dtype=np.float32)
    with tempfile.TemporaryDirectory() as d:
        np.save(f"{d}/x.npy", x)
        subprocess.run([a.lrunet, "predict", "--weights", a.weights, "--input", f"{d}/x.npy", "--output", f"{d}/y.npy",
                        "--threads", str(a.threads)], check=True, stdout=subprocess.DEVNULL)
        ours = np.load(f"{d}/y.npy")
    result = {"onnxruntime": ort.__version__, "threads": a.threads}
    for variant, sess in sessions.items():
        theirs = sess.run(None, {"x": x})[0]
        err = float(np.abs(ours - theirs).max() / max(1e-6, np.abs(theirs).max()))
        same = int((ours.argmax(1) == theirs.argmax(1)).sum())
        print(f"parity, {variant} weights: max |lrunet - onnxruntime| {err:.2e} of the largest logit, same class {same}/64")
        if err > 1e-3:
            sys.exit("ONNX Runtime and lrunet disagree: the comparison would not be of the same model")
        result[f"parity_{variant}"] = err

    # Timing: each batch size on both graphs; ONNX Runtime's figure is the faster of the two.
    for batch in (1, 64, 256):
        xb = rng.random((batch, in_ch, a.side, a.side), dtype=np.float32)
        rates = {v: median_rate(lambda: s.run(None, {"x": xb}), batch, 32 if batch == 1 else 1) for v, s in sessions.items()}
        best = max(rates.values())
        result[f"infer_b{batch}_img_s"] = best
        result[f"infer_b{batch}_by_graph"] = rates
        print(f"onnxruntime {ort.__version__}, {a.threads} threads, batch {batch}: "
              + ", ".join(f"{v} {r:.0f} img/s" for v, r in rates.items())
              + (f" (best {1000 / best:.2f} ms)" if batch == 1 else ""))
    with open(a.json, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
