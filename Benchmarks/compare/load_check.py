"""Loads a checkpoint (the authors' or one `lrunet train` wrote) into the PyTorch model of
models.py with strict=True, by name, and checks its outputs against `lrunet predict`.

    python load_check.py CKPT.safetensors --lrunet .build/release/lrunet
"""
import argparse, subprocess, sys, tempfile
import numpy as np
import torch
from frameworks import read_safetensors
from models import build

p = argparse.ArgumentParser(description=__doc__)
p.add_argument("weights")
p.add_argument("--lrunet", required=True)
a = p.parse_args()
w, meta = read_safetensors(a.weights)
net = build(meta)
net.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in w.items()}, strict=True)
net.eval()
side = 28 if int(meta["in_channels"]) == 1 else 32
x = np.random.default_rng(3).random((16, int(meta["in_channels"]), side, side), dtype=np.float32)
with tempfile.TemporaryDirectory() as d:
    np.save(f"{d}/x.npy", x)
    subprocess.run([a.lrunet, "predict", "--weights", a.weights, "--input", f"{d}/x.npy", "--output", f"{d}/y.npy"],
                   check=True, stdout=subprocess.DEVNULL)
    ours = np.load(f"{d}/y.npy")
with torch.inference_mode():
    theirs = net(torch.from_numpy(x)).numpy()
err = float(np.abs(ours - theirs).max() / max(1e-6, np.abs(theirs).max()))
print(f"{a.weights}: {meta['arch']} loads into PyTorch {torch.__version__} with strict=True ({len(w)} tensors); "
      f"max |lrunet - pytorch| = {err:.1e} of the largest output, same class {(ours.argmax(1) == theirs.argmax(1)).sum()}/16")
sys.exit(0 if err < 1e-4 else 1)
