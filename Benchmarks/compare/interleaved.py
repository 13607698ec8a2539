"""LruNet-Swift against ONNX Runtime, interleaved: for each checkpoint and batch size, rounds of
one `lrunet bench` run and one ONNX Runtime run back to back, each in a fresh process (ONNX
Runtime's pool threads spin after a run and would slow whatever runs next), the order swapped
every round, so a slow phase of a shared host hits both sides of a pair. Prints the median of
the paired ratios (ours / theirs) with their range. Before timing, ONNX Runtime's logits must
match `lrunet predict` on the same images. `make bench-ort` runs it on the five Fashion-MNIST
checkpoints. Where PyTorch is installed, a baseline's ONNX Runtime figure is the faster of the
graph built from the checkpoint and the one PyTorch exports.

With --train, the same pairing for a training step (forward, cross-entropy, backward, SGD with
the authors' momentum and weight decay) at --train-batch against eager PyTorch, whose model
must first match `lrunet predict` too. `make bench-torch` runs it on the four baselines.

    python interleaved.py --lrunet .build/release/lrunet --weights A.safetensors B.safetensors --rounds 5
    python interleaved.py --lrunet .build/release/lrunet --weights A.safetensors --train --rounds 5
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)


def lrunet_logits(a, x):
    """`lrunet predict` on the images x (N, C, H, W)."""
    with tempfile.TemporaryDirectory() as d:
        np.save(f"{d}/x.npy", x)
        subprocess.run([a.lrunet, "predict", "--weights", a.weights, "--input", f"{d}/x.npy", "--output", f"{d}/y.npy",
                        "--threads", str(a.threads)], check=True, stdout=subprocess.DEVNULL)
        return np.load(f"{d}/y.npy")


def median_rate(a, run):
    """Images per second of `run` (one batch of a.batch): after a warm-up, a.runs runs each
    repeating it for at least a.min_time seconds; the median run."""
    run()
    rates = []
    for _ in range(a.runs):
        n, t0 = 0, time.perf_counter()
        while True:
            run()
            n += 1
            t = time.perf_counter() - t0
            if t >= a.min_time:
                break
        rates.append(n * a.batch / t)
    return statistics.median(rates)


def ort_worker(a):
    """One ONNX Runtime measurement (or the parity check) in this process; prints JSON."""
    import onnxruntime as ort
    import onnx_graphs
    from frameworks import read_safetensors
    w, meta = read_safetensors(a.weights)
    in_ch = int(meta["in_channels"])
    side = a.side or (28 if in_ch == 1 else 32)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = a.threads
    opts.inter_op_num_threads = 1
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # LruNet: the shared-weight graph and the unrolled one (which lets ONNX Runtime fold each
    # BatchNorm); its figure is the faster of the two.
    variants = ("shared", "unrolled") if meta["arch"] == "lrunet" else ("built",)
    graphs = [onnx_graphs.build(w, meta, unrolled=v == "unrolled")[0] for v in variants]
    if meta["arch"] != "lrunet" and torch_available():
        from frameworks import exported_graph
        graphs.append(exported_graph(w, meta, side))
    sessions = [ort.InferenceSession(g.SerializeToString(), opts, providers=["CPUExecutionProvider"]) for g in graphs]
    rng = np.random.default_rng(7)
    if a.parity:
        x = rng.random((64, in_ch, side, side), dtype=np.float32)
        ours = lrunet_logits(a, x)
        worst = 0.0
        for s in sessions:
            theirs = s.run(None, {"x": x})[0]
            worst = max(worst, float(np.abs(ours - theirs).max() / max(1e-6, np.abs(theirs).max())))
        print(json.dumps({"parity": worst, "version": ort.__version__}))
        return
    xb = rng.random((a.batch, in_ch, side, side), dtype=np.float32)
    best = 0.0
    for s in sessions:
        best = max(best, median_rate(a, lambda: s.run(None, {"x": xb})))
    print(json.dumps({"img_s": best}))


def torch_available():
    try:
        import torch  # noqa: F401
        return True
    except ImportError:
        return False


def torch_worker(a):
    """One PyTorch training measurement (or the parity check) in this process; prints JSON."""
    import torch
    from frameworks import read_safetensors, torch_model
    w, meta = read_safetensors(a.weights)
    in_ch = int(meta["in_channels"])
    side = a.side or (28 if in_ch == 1 else 32)
    torch.set_num_threads(a.threads)
    net = torch_model(w, meta)
    rng = np.random.default_rng(7)
    if a.parity:
        x = rng.random((64, in_ch, side, side), dtype=np.float32)
        ours = lrunet_logits(a, x)
        with torch.inference_mode():
            theirs = net(torch.from_numpy(x)).numpy()
        print(json.dumps({"parity": float(np.abs(ours - theirs).max() / max(1e-6, np.abs(theirs).max())),
                          "version": torch.__version__}))
        return
    net.train()
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    xt = torch.from_numpy(rng.random((a.batch, in_ch, side, side), dtype=np.float32))
    yt = torch.from_numpy(rng.integers(0, int(meta["num_classes"]), a.batch))

    def step():
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(xt), yt).backward()
        opt.step()
    print(json.dumps({"img_s": median_rate(a, step)}))


def ours_train(a, weights, batch):
    out = subprocess.run([a.lrunet, "bench", "--weights", weights, "--batch", "1", "--runs", "1", "--train",
                          "--train-batch", str(batch), "--threads", str(a.threads), "--min-time", str(a.min_time), "--json"],
                         check=True, capture_output=True, text=True).stdout
    return next(r for r in json.loads(out)["rows"] if r["workload"].startswith("training"))["images_per_second"]


def ours(a, weights, batch):
    out = subprocess.run([a.lrunet, "bench", "--weights", weights, "--batch", str(batch), "--threads", str(a.threads),
                          "--runs", str(a.runs), "--min-time", str(a.min_time), "--json"],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["rows"][0]["images_per_second"]


def theirs(a, weights, batch, parity=False):
    cmd = [sys.executable, os.path.abspath(__file__), "--torch-worker" if a.train else "--ort-worker", "--weights", weights, "--batch", str(batch),
           "--threads", str(a.threads), "--runs", str(a.runs), "--min-time", str(a.min_time), "--lrunet", a.lrunet]
    out = subprocess.run(cmd + (["--parity"] if parity else []), check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lrunet", required=True)
    p.add_argument("--weights", nargs="+", required=True)
    p.add_argument("--batch", default="1,64,256")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--min-time", type=float, default=0.2)
    p.add_argument("--threads", type=int, default=os.cpu_count())
    p.add_argument("--side", type=int, default=0)
    p.add_argument("--json", help="also write the figures here")
    p.add_argument("--train", action="store_true", help="compare a training step with PyTorch instead")
    p.add_argument("--train-batch", type=int, default=128)
    p.add_argument("--ort-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--torch-worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--parity", action="store_true", help=argparse.SUPPRESS)
    a = p.parse_args()
    if a.ort_worker or a.torch_worker:
        a.weights, a.batch = a.weights[0], int(a.batch)
        return ort_worker(a) if a.ort_worker else torch_worker(a)
    if a.train:
        if not torch_available():
            sys.exit("interleaved.py: PyTorch is not installed (make bench-compare installs the CPU wheel)")
        framework, measure, batches = "PyTorch", ours_train, [a.train_batch]
    else:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            sys.exit("interleaved.py: onnxruntime is not installed (pip install onnxruntime onnx numpy)")
        framework, measure, batches = "ONNX Runtime", ours, [int(b) for b in a.batch.split(",")]
    version = None
    for w in a.weights:
        check = theirs(a, w, 1, parity=True)
        version = check["version"]
        print(f"parity, {os.path.basename(w)}: max |lrunet - {framework}| {check['parity']:.2e} of the largest logit", flush=True)
        if check["parity"] > 1e-3:
            sys.exit(f"{w}: {framework} and lrunet disagree; the comparison would not be of the same model")
    pairs = {(w, b): [] for w in a.weights for b in batches}
    for r in range(a.rounds):
        for (w, b), got in pairs.items():
            if r % 2 == 0:
                mine, other = measure(a, w, b), theirs(a, w, b)["img_s"]
            else:
                other = theirs(a, w, b)["img_s"]
                mine = measure(a, w, b)
            got.append((mine, other))
        print(f"round {r + 1}/{a.rounds} done", file=sys.stderr, flush=True)
    what = f"training step batch {a.train_batch}" if a.train else "inference"
    print(f"\nLruNet-Swift / {framework} {version}, {what}, {a.threads} threads, {a.rounds} interleaved rounds "
          f"(median of the paired ratios, range in brackets)")
    print(f"{'checkpoint':40s} {'batch':>5s} {'ours img/s':>11s} {'theirs':>10s} {'ratio':>7s}  range")
    rows = []
    for (w, b), got in pairs.items():
        ratios = sorted(m / o for m, o in got)
        med = statistics.median(ratios)
        name = os.path.basename(w).replace(".safetensors", "")
        print(f"{name:40s} {b:5d} {statistics.median(m for m, _ in got):11.0f} {statistics.median(o for _, o in got):10.0f} "
              f"{med:7.2f}  [{ratios[0]:.2f}-{ratios[-1]:.2f}]")
        rows.append({"checkpoint": name, "batch": b, "ratio": med, "ratios": ratios,
                     "ours_img_s": [m for m, _ in got], "theirs_img_s": [o for _, o in got]})
    if a.json:
        with open(a.json, "w") as f:
            json.dump({"framework": framework, "version": version, "workload": what, "threads": a.threads,
                       "rounds": a.rounds, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
