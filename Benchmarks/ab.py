#!/usr/bin/env python3
"""Same-run speed of two lrunet builds: `lrunet bench --json` on each checkpoint and workload
(one batch size, or the training step, per invocation), the two builds back to back with the
order swapped every round, so a slow phase of a shared host hits both sides of a pair; for every
workload the median over rounds of the paired ratio new / old images per second.

    python3 Benchmarks/ab.py --old OLD/lrunet --new .build/release/lrunet --weights W [W ...]

`make bench-ab REF=<commit>` builds the reference and runs this on the five Fashion-MNIST
checkpoints. Exits 1 when --fail-below is given and a workload's ratio is under it.
"""
import argparse, json, statistics, subprocess, sys


def bench(binary, weights, batch, train_batch, args):
    """Images per second of one workload: inference at `batch`, or (batch None) a training step."""
    cmd = [binary, "bench", "--weights", weights, "--json", "--runs", str(args.runs),
           "--min-time", str(args.min_time), "--threads", str(args.threads)]
    cmd += ["--batch", "1", "--train", "--train-batch", str(train_batch)] if batch is None else ["--batch", str(batch)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    rows = json.loads(out)["rows"]
    return rows[-1]["workload"], rows[-1]["images_per_second"]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--old", required=True)
    p.add_argument("--new", required=True)
    p.add_argument("--weights", nargs="+", required=True)
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--batch", default="1,64,256")
    p.add_argument("--train-batch", type=int, default=128, help="0: no training step")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--min-time", type=float, default=0.3)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--fail-below", type=float, default=0.0)
    args = p.parse_args()

    workloads = [int(b) for b in args.batch.split(",") if b] + ([None] if args.train_batch > 0 else [])
    ratios = {}     # (checkpoint, workload) -> per-round new/old
    for r in range(args.rounds):
        for w in args.weights:
            for batch in workloads:
                order = [("old", args.old), ("new", args.new)]
                if r % 2: order.reverse()
                got = {side: bench(binary, w, batch, args.train_batch, args) for side, binary in order}
                ratios.setdefault((w, got["new"][0]), []).append(got["new"][1] / got["old"][1])
        print(f"round {r + 1}/{args.rounds} done", file=sys.stderr)

    worst = float("inf")
    print(f"{'checkpoint':44} {'workload':22} {'new/old':>8}  {'rounds (min-max)':>18}")
    for (w, workload), rs in ratios.items():
        m = statistics.median(rs)
        worst = min(worst, m)
        name = w.rsplit("/", 1)[-1].removesuffix(".safetensors")
        print(f"{name:44} {workload:22} {m:8.3f}  {min(rs):8.3f}-{max(rs):.3f}")
    if args.fail_below and worst < args.fail_below:
        print(f"slower: a workload's median ratio {worst:.3f} is under {args.fail_below}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
