#!/usr/bin/env python3
"""Writes the seed corpora under Fuzz/corpus/ (committed; rerun only to change them).

Every seed is a well-formed file of its format, written the way real ones are: numpy's
np.save for .npy, gzip for IDX, the safetensors layout for checkpoints. Checkpoint seeds are
the headers (names, shapes, metadata; no weights) of the five architectures, read from the
checkpoints in PRETRAINED. Needs numpy.
"""
import gzip, io, json, os, struct, sys
import numpy as np

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus")
pretrained = sys.argv[1] if len(sys.argv) > 1 else "../shared/pretrained"
rng = np.random.default_rng(7)

def put(target, name, data):
    os.makedirs(os.path.join(root, target), exist_ok=True)
    with open(os.path.join(root, target, name), "wb") as f:
        f.write(data)

def safetensors(tensors, metadata=None):
    header, blobs, off = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, (dtype, arr) in tensors.items():
        b = arr.tobytes()
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [off, off + len(b)]}
        blobs.append(b); off += len(b)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h)) + h + b"".join(blobs)

# safetensors: small files with the dtypes and metadata real checkpoints carry.
put("safetensors", "seed-f32", safetensors({"conv.weight": ("F32", rng.standard_normal((4, 1, 3, 3), dtype=np.float32)),
                                            "bn.running_var": ("F32", np.ones(4, np.float32))},
                                           {"arch": "lrunet", "layer_reuse": "2", "num_classes": "10", "width_mult": "1", "in_channels": "1"}))
put("safetensors", "seed-mixed", safetensors({"a": ("F16", np.arange(6, dtype=np.float16).reshape(2, 3)),
                                              "bn.num_batches_tracked": ("I64", np.array(7, np.int64)),
                                              "z": ("F32", np.zeros((0, 3), np.float32))}, {"format": "pt"}))
put("safetensors", "seed-empty", safetensors({}))

# checkpoint: one header per architecture.
for stem in ["fashionmnist-lru1-09117", "fashionmnist-mobilenet-025x-09063", "fashionmnist-mobilenetv2-025x-09343",
             "fashionmnist-shufflenet-05x-09411", "fashionmnist-shufflenetv2-025x-09342"]:
    with open(os.path.join(pretrained, stem + ".safetensors"), "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        put("checkpoint", "seed-" + stem.split("-")[1], f.read(n).rstrip(b" "))

# npy: what np.save writes, in the versions and dtypes users send.
def npy(arr, **kw):
    b = io.BytesIO(); np.save(b, arr, **kw); return b.getvalue()
put("npy", "seed-image", npy(rng.random((1, 1, 28, 28), dtype=np.float32)))
put("npy", "seed-vector", npy(np.arange(5, dtype=np.float32)))
put("npy", "seed-scalar", npy(np.float32(3.5)))
put("npy", "seed-float64", npy(np.arange(4.0)))
put("npy", "seed-fortran", npy(np.asfortranarray(rng.random((3, 2), dtype=np.float32))))
b = io.BytesIO(); np.lib.format.write_array(b, np.ones((2, 2), np.float32), version=(2, 0)); put("npy", "seed-v2", b.getvalue())

# idx: images and labels as the MNIST files lay them out, plain and gzip.
def idx(arr):
    return bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", d) for d in arr.shape) + arr.astype(np.uint8).tobytes()
images = rng.integers(0, 256, (3, 28, 28)).astype(np.uint8)
labels = rng.integers(0, 10, 3).astype(np.uint8)
put("idx", "seed-images", idx(images))
put("idx", "seed-labels", idx(labels))
put("idx", "seed-images.gz", gzip.compress(idx(images), mtime=0))
put("idx", "seed-labels.gz", gzip.compress(idx(labels), mtime=0))

# cifar: two records of each layout.
put("cifar", "seed-cifar10", b"".join(bytes([int(l)]) + rng.integers(0, 256, 3072).astype(np.uint8).tobytes() for l in [3, 9]))
put("cifar", "seed-cifar100", b"".join(bytes([c, f]) + rng.integers(0, 256, 3072).astype(np.uint8).tobytes() for c, f in [(4, 31), (19, 99)]))
# t7: PyTorch's legacy torch.save layout, written by Python's own pickler with stand-in modules
# so that the globals are spelled as PyTorch spells them (no torch needed): magic, protocol
# version, system info, {'net': OrderedDict, 'acc', 'epoch'}, storage keys, storages. Also the
# authors' files cut to the fuzzer's 64 KB (the state dict's pickle whole, the storages cut).
import collections, pickle, types
torch_module, utils_module = types.ModuleType("torch"), types.ModuleType("torch._utils")
class FloatStorage: pass
def _rebuild_tensor_v2(*args): pass
FloatStorage.__module__, _rebuild_tensor_v2.__module__ = "torch", "torch._utils"
torch_module.FloatStorage, utils_module._rebuild_tensor_v2, torch_module._utils = FloatStorage, _rebuild_tensor_v2, utils_module
sys.modules["torch"], sys.modules["torch._utils"] = torch_module, utils_module

class Storage:
    def __init__(self, key, values, view=None): self.key, self.values, self.view = key, values, view
class Tensor:
    def __init__(self, storage, shape, offset=0): self.storage, self.shape, self.offset = storage, shape, offset
    def __reduce_ex__(self, protocol):
        stride, s = [], 1
        for d in reversed(self.shape): stride.insert(0, s); s *= d
        return (_rebuild_tensor_v2, (self.storage, self.offset, tuple(self.shape), tuple(stride), False, collections.OrderedDict()))
class Pickler(pickle.Pickler):
    def persistent_id(self, obj):
        if isinstance(obj, Storage):
            return ("storage", FloatStorage, obj.key, "cpu", len(obj.values), obj.view)
        return None

def t7(state, acc=91.5, epoch=3):
    storages = {}
    for t in state.values(): storages[t.storage.key] = t.storage
    out = io.BytesIO()
    for header in (0x1950a86a20f9469cfc6c, 1001, {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}):
        pickle.dump(header, out, protocol=2)
    Pickler(out, protocol=2).dump({"net": state, "acc": acc, "epoch": epoch})
    keys = sorted(storages)
    pickle.dump(keys, out, protocol=2)
    for k in keys:
        v = np.asarray(storages[k].values, np.float32)
        out.write(struct.pack("<q", v.size) + v.tobytes())
    return out.getvalue()

def pickles_of(path):
    """The five pickles of a legacy file, without the storages (the harness supplies those)."""
    with open(path, "rb") as f:
        data = f.read()
    import pickletools
    b = io.BytesIO(data)
    for _ in range(5):
        for _ in pickletools.genops(b): pass
    return data[:b.tell()]

authors = os.path.join(os.path.dirname(pretrained.rstrip("/")), "authors")
for name in ["fashionmnist-lru1-ckpt-09117.t7", "fashionmnist-lru10-ckpt-09346.t7", "fmnist-mobilenet-025x-ckpt-09063.t7",
             "fmnist-mobilenetv2-025x-ckpt-09343.t7", "fmnist-shufflenet-05x-ckpt-09411.t7", "fmnist-shufflenetv2-025x-ckpt-09342.t7"]:
    put("t7", "seed-" + name.split("-")[1], pickles_of(os.path.join(authors, name)))

# Whole small files the reader must take apart (a view, a storage two tensors share, DataParallel
# names); no architecture has them, so the import refuses them: regression inputs, not seeds.
regressions = os.path.join(os.path.dirname(root), "regressions", "t7")
small = collections.OrderedDict()
for i, (name, shape) in enumerate([("module.features.0.weight", (4, 1, 3, 3)), ("module.features.1.weight", (4,)),
                                   ("module.features.1.bias", (4,)), ("module.classifier.1.weight", (10, 4))]):
    n = int(np.prod(shape))
    small[name] = Tensor(Storage(str(1000 + i), rng.standard_normal(n).astype(np.float32)), shape)
shared = Storage("77", rng.standard_normal(12).astype(np.float32))
for name, state in [("reader-small", small),
                    ("reader-shared-storage", collections.OrderedDict([("a", Tensor(shared, (2, 3))), ("b", Tensor(shared, (6,), offset=6))])),
                    ("reader-view", collections.OrderedDict([("v", Tensor(Storage("5", np.arange(8, dtype=np.float32), view=("6", 2, 4)), (4,)))]))]:
    with open(os.path.join(regressions, name), "wb") as f:
        f.write(t7(state))
print("seeds written to", root)
