"""ONNX Runtime and PyTorch on the same checkpoint (any of the five architectures), for
`make bench-compare`.

ONNX Runtime: the network built as an ONNX graph straight from the checkpoint (onnx_graphs.py;
for LruNet the shared conv weights one initializer each, or one copy per iteration); where
PyTorch is installed, the baselines also as the PyTorch module exported to ONNX, and ONNX
Runtime's figure is the faster graph. PyTorch: the network as an eager `nn.Module` written from
the specification (models.py), loaded with the checkpoint's state dict. Both must match `lrunet predict` on the same images before they
are timed at batch 1, 64 and 256 (PyTorch also a training step at batch 128); the figures go
to JSON for `lrunet-bench --compare`. A framework that is not installed is skipped.

    python frameworks.py --weights CKPT.safetensors --lrunet .build/release/lrunet --threads 2 --json out.json
"""
import argparse
import gc
import json
import os
import struct
import subprocess
import sys
import tempfile
import time

import numpy as np

try:
    import onnx
    import onnxruntime as ort
    import onnx_graphs
except ImportError:
    ort = None
try:
    import torch
except ImportError:
    torch = None


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


def median_rate(run, images, repeats, runs=5):
    run()  # warm-up
    rates = []
    for _ in range(runs):
        t = time.perf_counter()
        for _ in range(repeats):
            run()
        rates.append(images * repeats / (time.perf_counter() - t))
    return sorted(rates)[len(rates) // 2]


def torch_model(w, meta):
    """The network as an eager PyTorch module (models.py), the checkpoint loaded strictly."""
    from models import build
    net = build(meta)
    net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in w.items()}, strict=True)
    return net.eval()


def exported_graph(w, meta, side):
    """A baseline as ONNX, exported from the PyTorch module (TorchScript exporter, opset 17)."""
    import io
    net = torch_model(w, meta)
    buf = io.BytesIO()
    x = torch.zeros(1, int(meta["in_channels"]), side, side)
    torch.onnx.export(net, x, buf, input_names=["x"], output_names=["y"], dynamic_axes={"x": {0: "n"}, "y": {0: "n"}},
                      opset_version=17, dynamo=False)
    return onnx.load_from_string(buf.getvalue())


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--weights", required=True)
    p.add_argument("--lrunet", required=True, help="the lrunet binary, for the parity check")
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--side", type=int, default=0, help="image side (default: 28 for 1 channel, 32 for 3)")
    p.add_argument("--json", required=True)
    a = p.parse_args()

    w, meta = read_safetensors(a.weights)
    in_ch = int(meta["in_channels"])
    a.side = a.side or (28 if in_ch == 1 else 32)
    rng = np.random.default_rng(7)
    x = rng.random((64, in_ch, a.side, a.side), dtype=np.float32)
    with tempfile.TemporaryDirectory() as d:
        np.save(f"{d}/x.npy", x)
        subprocess.run([a.lrunet, "predict", "--weights", a.weights, "--input", f"{d}/x.npy", "--output", f"{d}/y.npy",
                        "--threads", str(a.threads)], check=True, stdout=subprocess.DEVNULL)
        ours = np.load(f"{d}/y.npy")

    def parity(label, theirs):
        err = float(np.abs(ours - theirs).max() / max(1e-6, np.abs(theirs).max()))
        same = int((ours.argmax(1) == theirs.argmax(1)).sum())
        print(f"parity, {label}: max |lrunet - {label}| {err:.2e} of the largest logit, same class {same}/64")
        if err > 1e-3:
            sys.exit(f"{label} and lrunet disagree: the comparison would not be of the same model")
        return err

    batches = {b: rng.random((b, in_ch, a.side, a.side), dtype=np.float32) for b in (1, 64, 256)}
    result = {"threads": a.threads}
    if ort is None:
        print("onnxruntime: not installed, skipped")
    else:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = a.threads
        opts.inter_op_num_threads = 1
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        sessions = {}
        for variant in ("shared", "unrolled") if meta["arch"] == "lrunet" else ("built",):
            model, _, _ = onnx_graphs.build(w, meta, unrolled=variant == "unrolled")
            sessions[variant] = ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])
        if meta["arch"] != "lrunet" and torch is not None:
            sessions["exported"] = ort.InferenceSession(exported_graph(w, meta, a.side).SerializeToString(), opts,
                                                        providers=["CPUExecutionProvider"])
        r = {"version": ort.__version__}
        for variant, sess in sessions.items():
            r[f"parity_{variant}"] = parity(f"onnxruntime ({variant} weights)", sess.run(None, {"x": x})[0])
        # Each batch size on both graphs; ONNX Runtime's figure is the faster of the two.
        for batch, xb in batches.items():
            rates = {v: median_rate(lambda: s.run(None, {"x": xb}), batch, 32 if batch == 1 else 1) for v, s in sessions.items()}
            r[f"infer_b{batch}_img_s"] = max(rates.values())
            r[f"infer_b{batch}_by_graph"] = rates
            print(f"onnxruntime {ort.__version__}, {a.threads} threads, batch {batch}: "
                  + ", ".join(f"{v} {rate:.0f} img/s" for v, rate in rates.items()))
        result["onnxruntime"] = r
        # ONNX Runtime's pool threads spin between runs; they must be gone before PyTorch is timed.
        del sessions, sess
        gc.collect()
    if torch is None:
        print("pytorch: not installed, skipped")
    else:
        torch.set_num_threads(a.threads)
        net = torch_model(w, meta)
        r = {"version": torch.__version__}
        with torch.inference_mode():
            r["parity"] = parity("pytorch", net(torch.from_numpy(x)).numpy())
            for batch, xb in batches.items():
                t = torch.from_numpy(xb)
                r[f"infer_b{batch}_img_s"] = median_rate(lambda: net(t), batch, 32 if batch == 1 else 1)
                print(f"pytorch {torch.__version__}, {a.threads} threads, batch {batch}: {r[f'infer_b{batch}_img_s']:.0f} img/s")
        # One training step at batch 128: forward, cross-entropy, backward, SGD (the authors' settings).
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
        xt = torch.from_numpy(rng.random((128, in_ch, a.side, a.side), dtype=np.float32))
        yt = torch.from_numpy(rng.integers(0, int(meta["num_classes"]), 128))
        def step():
            opt.zero_grad()
            torch.nn.functional.cross_entropy(net(xt), yt).backward()
            opt.step()
        r["train_b128_img_s"] = median_rate(step, 128, 1, runs=3)
        print(f"pytorch {torch.__version__}, {a.threads} threads, training step batch 128: {r['train_b128_img_s']:.0f} img/s")
        result["pytorch"] = r
    with open(a.json, "w") as f:
        json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
