#!/usr/bin/env bash
# End-to-end checks of the lrunet command line: what it prints, exit codes,
# and that every kind of bad input gives one clear line and a non-zero exit.
set -u
LRUNET=${LRUNET:?path to the lrunet binary}
PRETRAINED=${PRETRAINED:-../shared/pretrained}
source "$(dirname "$0")/check.sh"

# Flag errors follow swift-argument-parser: the problem on the first line, then a usage hint; exit 64.
expect_usage_error() {
  local name=$1 frag=$2; shift 2
  "$@" >"$tmp/out" 2>"$tmp/err"; local rc=$?
  if [[ $rc -eq 64 ]] && head -n 1 "$tmp/err" | grep -q -- "$frag"; then ok "$name"
  else bad "$name (exit $rc): $(head -c 300 "$tmp/err")"; fi
}

"$LRUNET" --help | grep -q "eval" && ok "--help lists the commands" || bad "--help"
"$LRUNET" eval --help | grep -q -- "--logits-out" && ok "eval --help documents its options" || bad "eval --help"

w10="$PRETRAINED/fashionmnist-lru10-09346.safetensors"
if [[ -f $w10 ]]; then
  out=$("$LRUNET" eval --weights "$w10" --limit 500 --batch 100 --logits-out "$tmp/l.npy" 2>/dev/null)
  grep -q "test: [0-9]*/500 correct" <<<"$out" && ok "eval --limit prints correct/total" || bad "eval output: $out"
  grep -q "0.50 MB fetched once vs 4.25 MB unrolled" <<<"$out" && ok "eval prints the MAC report" || bad "eval MAC report"
  [[ $(head -c 6 "$tmp/l.npy" | tail -c 5) == NUMPY ]] && ok "eval --logits-out writes .npy" || bad "logits .npy"
  "$LRUNET" predict --weights "$w10" --input "$tmp/l.npy" --output "$tmp/y.npy" >/dev/null 2>"$tmp/err"
  grep -q "expected \[N, C, H, W\], got \[500, 10\]" "$tmp/err" && ok "predict rejects a rank-2 array" || bad "predict rank: $(cat "$tmp/err")"
  python3 -c "import numpy as np; x = np.zeros((2, 1, 28, 28), np.float32); x[1, 0, 3, 4] = np.nan; np.save('$tmp/nan.npy', x)" 2>/dev/null \
    && expect_error "predict refuses NaN input" "has nan at index 872" "$LRUNET" predict --weights "$w10" --input "$tmp/nan.npy" --output "$tmp/o.npy"
  "$LRUNET" info --weights "$w10" | grep -q "182,090" && ok "info prints the parameter total" || bad "info"
  "$LRUNET" info --weights "$w10" --plan | grep -q "^  pooled block output: stage1 + mpool1$" && ok "info --plan lists the inference fusions" || bad "info --plan"
  out=$("$LRUNET" bench --weights "$w10" --batch 1,3 --runs 2 --min-time 0 --train --train-batch 4 2>&1)
  [[ $(grep -cE "^(inference batch [13]|training batch 4) +[0-9]+ img/s \[[0-9]+-[0-9]+\] +[0-9.]+ ms/(batch|step) +[0-9.]+ GFLOP/s$" <<<"$out") -eq 3 ]] \
    && ok "bench times each batch size and a training step" || bad "bench output: $out"
  python3 -c "import re, sys; m = re.search(r'input gradients: ([0-9.]+) MB in one arena by liveness \(([0-9.]+) MB', sys.stdin.read()); sys.exit(0 if m and 0 < float(m[1]) < float(m[2]) else 1)" <<<"$out" \
    && ok "bench reports the training gradients' arena under their separate buffers" || bad "bench gradient memory: $out"
  expect_usage_error "bench rejects a bad batch list" "--batch must be" "$LRUNET" bench --weights "$w10" --batch 1,x
  # --profile: every leaf layer once, their shares (each rounded to 0.1%) summing to 100%.
  "$LRUNET" bench --weights "$PRETRAINED/fashionmnist-shufflenetv2-025x-09342.safetensors" --batch 2 --runs 1 --min-time 0 --profile --profile-layers 0 \
    | python3 -c "
import re, sys
text = sys.stdin.read()
n = int(re.search(r'slowest layers \(of (\d+)\)', text)[1])
shares = [float(m) for m in re.findall(r'^ +([0-9.]+)% +[0-9.]+ +\S+ \(', text, re.M)]
sys.exit(0 if n > 40 and len(shares) == n and abs(sum(shares) - 100) <= 0.05 * n + 0.01 else 1)" \
    && ok "bench --profile lists every layer once, shares summing to 100%" || bad "bench --profile layers"
  expect_usage_error "bench rejects a negative --profile-layers" "--profile-layers must not be negative" "$LRUNET" bench --weights "$w10" --profile-layers=-1
  # --json: one object a script reads without parsing prose.
  json_has() { python3 -c "import json, sys; d = json.load(sys.stdin); sys.exit(0 if $1 else 1)"; }
  "$LRUNET" eval --weights "$w10" --limit 200 --json 2>/dev/null | json_has "d['total'] == 200 and 0 < d['correct'] <= 200 and d['cost']['parameters'] == 182090" \
    && ok "eval --json" || bad "eval --json"
  "$LRUNET" info --weights "$w10" --json | json_has "len(d['layers']) > 10 and d['cost']['conv_bytes_fetched'] == 495400" && ok "info --json" || bad "info --json"
  "$LRUNET" bench --weights "$w10" --batch 1,2 --runs 1 --min-time 0 --json | json_has "[r['workload'] for r in d['rows']] == ['inference batch 1', 'inference batch 2']" \
    && ok "bench --json" || bad "bench --json"
  golden10="$(dirname "$PRETRAINED")/golden/fashionmnist-lru10-09346-input.npy"
  if [[ -f $golden10 ]]; then
    "$LRUNET" predict --weights "$w10" --input "$golden10" --output "$tmp/p.npy" --json | json_has "d['shape'][1] == 10 and len(d['predictions']) == d['shape'][0]" \
      && ok "predict --json" || bad "predict --json"
  fi
  [[ $("$LRUNET" --version) =~ ^[0-9]+\.[0-9]+\.[0-9]+ ]] && ok "--version: $("$LRUNET" --version)" || bad "--version"

  # Kernel paths and threads.
  "$LRUNET" info --weights "$w10" | grep -qE "^kernels: (baseline|avx2|avx512) " && ok "info names the kernel path" || bad "info kernel path"
  LRUNET_ISA=baseline "$LRUNET" info --weights "$w10" | grep -q "^kernels: baseline (4 lanes" && ok "LRUNET_ISA=baseline forces the portable path" || bad "LRUNET_ISA=baseline"
  expect_error "LRUNET_ISA names no set" "not an instruction set" env LRUNET_ISA=sse9 "$LRUNET" info --weights "$w10"
  if grep -qw avx512bw /proc/cpuinfo; then echo "skip: this CPU has AVX-512"
  else expect_error "LRUNET_ISA asks for a set the CPU lacks" "which this CPU lacks" env LRUNET_ISA=avx512 "$LRUNET" info --weights "$w10"; fi
  LRUNET_THREADS=3 "$LRUNET" info --weights "$w10" | grep -q "threads: 3 (default 3, from LRUNET_THREADS)" && ok "LRUNET_THREADS sets the thread count" || bad "LRUNET_THREADS"
  # OpenBLAS's kernels: named by info; a core set by the user is kept (the note says what the CPU
  # could run); after lrunet's own re-exec the new process says which core it replaced.
  "$LRUNET" info --weights "$w10" | grep -q "^OpenBLAS core: " && ok "info names OpenBLAS's core" || bad "info: no OpenBLAS core"
  OPENBLAS_CORETYPE=Prescott "$LRUNET" info --weights "$w10" | grep -q "^OpenBLAS core: Prescott, set by OPENBLAS_CORETYPE=Prescott" \
    && ok "OPENBLAS_CORETYPE set by the user wins" || bad "OPENBLAS_CORETYPE: $(OPENBLAS_CORETYPE=Prescott "$LRUNET" info --weights "$w10" | grep OpenBLAS)"
  LRUNET_BLAS_CORE=from:Prescott "$LRUNET" info --weights "$w10" | grep -q "chosen by lrunet over OpenBLAS's Prescott after a self-check" \
    && ok "a re-executed lrunet says which core it replaced" || bad "re-exec note"
  LRUNET_BLAS_CORE=selfcheck "$LRUNET" && ok "the OpenBLAS self-check passes on $("$LRUNET" info --weights "$w10" | grep -o '^OpenBLAS core: [A-Za-z]*')" || bad "OpenBLAS self-check failed"
  if command -v taskset >/dev/null; then
    taskset -c 0 "$LRUNET" bench --weights "$w10" --batch 1 --runs 1 --min-time 0 | grep -q "threads: 1 (default 1, from CPU affinity" \
      && ok "taskset -c 0: one thread" || bad "taskset: $(taskset -c 0 "$LRUNET" bench --weights "$w10" --batch 1 --runs 1 --min-time 0 | grep threads)"
  fi

  # The example consumer: a package that imports LruNet, built with plain swift build -c release.
  if [[ -n ${CLASSIFY:-} ]]; then
    out=$("$CLASSIFY" "$w10" --limit 500 2>&1)
    grep -q "classify: [0-9]*/500 correct" <<<"$out" && ok "Examples/Classify classifies through the public API" || bad "classify: $out"
    [[ $(objdump -d "$CLASSIFY" | grep -c 'call.*fmaf') -eq 0 ]] && ok "the consumer binary makes no fmaf calls" || bad "fmaf calls in the consumer"
    expect_error "classify on a missing checkpoint" "no such file" "$CLASSIFY" "$tmp/none.safetensors"
    # The README's dependency lines are the consumer's (which make test builds as a package would).
    for line in '.package(name: "LruNet", path:' '.product(name: "LruNet", package: "LruNet")'; do
      grep -qF "$line" README.md && grep -qF "$line" Examples/Classify/Package.swift && grep -qF "$line" Sources/LruNet/LruNet.docc/GettingStarted.md \
        && ok "README, DocC and Examples/Classify share: $line" || bad "dependency line not shared: $line"
    done
    # The README's library example is the consumer's code.
    sed -n '/^\/\/ Inference with the authors/,/^```/p' README.md | sed '$d' | grep -v '^$' >"$tmp/readme.swift"
    missing=$(grep -vxFf <(sed 's/^ *//' Examples/Classify/Sources/Classify/main.swift) <(sed 's/^ *//' "$tmp/readme.swift") | head -3)
    [[ -s $tmp/readme.swift && -z $missing ]] && ok "the README's library example is in Examples/Classify" || bad "README example not in the consumer: $missing"
  fi

  # Bad inputs.
  expect_error "missing weights file" "no such file" "$LRUNET" eval --weights "$tmp/none.safetensors"
  head -c 1000 "$w10" >"$tmp/trunc.safetensors"
  expect_error "truncated checkpoint" "truncated" "$LRUNET" eval --weights "$tmp/trunc.safetensors"
  printf '\xff\xff\xff\xff\xff\xff\xff\x7f{}' >"$tmp/hostile.safetensors"
  expect_error "hostile header length" "exceeds" "$LRUNET" info --weights "$tmp/hostile.safetensors"
  echo "just text" >"$tmp/text.safetensors"
  expect_error "wrong file type" "not a safetensors file" "$LRUNET" info --weights "$tmp/text.safetensors"
  expect_error "not a .npy input" "magic" "$LRUNET" predict --weights "$w10" --input "$tmp/text.safetensors" --output "$tmp/o.npy"
  expect_error "missing data directory" "no such file" "$LRUNET" eval --weights "$w10" --data "$tmp/nodata"
  expect_usage_error "bad flag value" "--batch must be" "$LRUNET" eval --weights "$w10" --batch 0
  expect_usage_error "unknown flag" "Unknown option '--frobnicate'" "$LRUNET" eval --weights "$w10" --frobnicate
else
  echo "skip: $w10 not found"
fi

# Hostile headers: a few hundred bytes whose metadata asks for the largest network of each
# architecture (widths, classes, input channels at their limits) and hold one 4-byte tensor. The
# file is checked against the model before any parameter memory exists: one line, under 200 MB
# resident and 1 s of CPU time (a build-then-check path reached 5.4 GB here). CPU time, not wall
# time: a loaded or slower machine stretches the second and not the first.
hostile() {  # FILE ARCH WIDTH EXTRA-METADATA
  python3 - "$@" <<'PY'
import json, struct, sys
path, arch, width, extra = sys.argv[1], sys.argv[2], sys.argv[3], json.loads(sys.argv[4])
meta = {"arch": arch, "width_mult": width, "num_classes": "100000", "in_channels": "64", **extra}
h = json.dumps({"__metadata__": meta, "x": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}, separators=(",", ":")).encode()
open(path, "wb").write(struct.pack("<Q", len(h)) + h + bytes(4))
PY
}
for spec in "mobilenet 4 {}" "mobilenetv2 4 {}" "shufflenet 4 {\"groups\":\"8\"}" "shufflenetv2 2 {}" "lrunet 2 {\"layer_reuse\":\"64\"}"; do
  read -r arch width extra <<<"$spec"
  f="$tmp/hostile-$arch.safetensors"; hostile "$f" "$arch" "$width" "$extra"
  for cmd in info eval; do
    /usr/bin/time -f "%M %U %S" -o "$tmp/usage" "$LRUNET" $cmd --weights "$f" >/dev/null 2>"$tmp/err"; rc=$?
    read -r kb user sys < <(tail -n 1 "$tmp/usage")   # time prints "Command exited ..." first
    secs=$(awk -v u="$user" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
    if [[ $rc -ne 0 && $rc -lt 128 && $(wc -l <"$tmp/err") -eq 1 ]] && grep -q "tensor 'x' that the model does not have" "$tmp/err" \
       && (( kb < 200000 )) && awk -v s="$secs" 'BEGIN { exit !(s < 1) }'; then
      ok "hostile $(wc -c <"$f")-byte $arch header ($cmd): one line, $((kb / 1024)) MB peak, ${secs} s of CPU"
    else bad "hostile $arch header ($cmd): exit $rc, $((kb / 1024)) MB peak, ${secs} s of CPU: $(head -c 200 "$tmp/err")"; fi
  done
done

# The authors' .t7 files: imported without Python, and loaded directly.
AUTHORS=${AUTHORS:-$(dirname "$PRETRAINED")/authors}
if [[ -f $AUTHORS/fashionmnist-lru10-ckpt-09346.t7 ]]; then
  out=$("$LRUNET" eval --weights "$AUTHORS/fashionmnist-lru10-ckpt-09346.t7" 2>/dev/null)
  grep -q "9346/10000 correct" <<<"$out" && ok "eval of the authors' lru10 .t7: 9346/10000" || bad "eval .t7: $out"
  "$LRUNET" import "$AUTHORS"/*.t7 --out-dir "$tmp/imported" >"$tmp/import.log" 2>&1 && [[ $(ls "$tmp/imported" | wc -l) -eq 18 ]] \
    && ok "import of all 18 .t7 files" || bad "import: $(tail -2 "$tmp/import.log")"
else
  echo "skip: no $AUTHORS"
fi
# A pickle that calls os.system, as Python writes it: refused with one line, nothing written, nothing run.
python3 -c "import os, pickle
class Evil:
    def __reduce__(self): return (os.system, ('touch $tmp/pwned',))
open('$tmp/evil.t7', 'wb').write(pickle.dumps(Evil(), protocol=2))"
expect_error "import refuses a pickle naming posix system" "pickle global 'posix system' is not allowed" \
  "$LRUNET" import "$tmp/evil.t7" --out "$tmp/evil.safetensors"
[[ ! -e $tmp/evil.safetensors && ! -e $tmp/pwned ]] && ok "the hostile import wrote nothing and ran nothing" || bad "the hostile import left files"
expect_error "eval refuses the same pickle" "posix system" "$LRUNET" eval --weights "$tmp/evil.t7"

# Every architecture: the baselines' checkpoints through eval, info, predict and bench.
for stem in fashionmnist-mobilenet-025x-09063 fashionmnist-mobilenetv2-025x-09343 fashionmnist-shufflenet-05x-09411 \
            fashionmnist-shufflenetv2-025x-09342 cifar10-shufflenetv2-025x-089310; do
  w="$PRETRAINED/$stem.safetensors"
  [[ -f $w ]] || { echo "skip: $w not found"; continue; }
  if [[ $stem == fashion* ]]; then
    out=$("$LRUNET" eval --weights "$w" --limit 1000 2>/dev/null)
    grep -q "test: [0-9]*/1000 correct" <<<"$out" && ok "eval $stem" || bad "eval $stem: $out"
  fi
  "$LRUNET" info --weights "$w" | grep -qE "^(mobilenet|mobilenetv2|shufflenet|shufflenetv2) " && ok "info $stem" || bad "info $stem"
  golden="$(dirname "$PRETRAINED")/golden/$stem-input.npy"
  if [[ -f $golden ]]; then
    "$LRUNET" predict --weights "$w" --input "$golden" --output "$tmp/g.npy" >/dev/null && ok "predict $stem" || bad "predict $stem"
  fi
  "$LRUNET" bench --weights "$w" --batch 1,2 --runs 1 --min-time 0 | grep -q "inference batch 2" && ok "bench $stem" || bad "bench $stem"
done
w="$PRETRAINED/fashionmnist-mobilenetv2-025x-09343.safetensors"
out=$("$LRUNET" info --weights "$w")
grep -q "248,978" <<<"$out" && grep -q "MACs per image: 5.43 M" <<<"$out" && ok "info: MobileNetV2-0.25's params and MACs" || bad "info mobilenetv2: $out"

# Training: a short run on a subset must lower the loss; the checkpoint it writes must
# evaluate to exactly the accuracy it printed; a run killed mid-epoch and resumed must end
# with byte-identical weights to an uninterrupted one (same seed, same threads).
train=("$LRUNET" train --reuse 2 --epochs 3 --batch 64 --limit 4096 --test-limit 1000 --threads 2 --seed 7)
"${train[@]}" --out "$tmp/a" >"$tmp/a.log" 2>&1 || bad "train exited non-zero: $(tail -3 "$tmp/a.log")"
first=$(awk -F, 'NR==2 {print $3}' "$tmp/a/log.csv"); last=$(awk -F, 'NR==4 {print $3}' "$tmp/a/log.csv")
awk -v f="$first" -v l="$last" 'BEGIN { exit !(l < 0.8 * f) }' && ok "training loss falls ($first -> $last)" || bad "loss did not fall: $first -> $last"
[[ -s $tmp/a/curves.svg ]] && grep -q "<polyline" "$tmp/a/curves.svg" && ok "train writes the SVG curves" || bad "curves.svg"
printed=$(grep -o "test accuracy [0-9.]*% ([0-9]*/1000)" "$tmp/a.log" | tail -1 | grep -o "[0-9]*/1000")
evaluated=$("$LRUNET" eval --weights "$tmp/a/model.safetensors" --limit 1000 2>/dev/null | grep -o "[0-9]*/1000 correct" | grep -o "[0-9]*/1000")
[[ -n $printed && $printed == "$evaluated" ]] && ok "eval of the train checkpoint matches train ($printed)" || bad "train printed '$printed', eval gives '$evaluated'"

"${train[@]}" --out "$tmp/b" >"$tmp/b.log" 2>&1 &
pid=$!
for _ in $(seq 1 600); do [[ $(cat "$tmp/b/log.csv" 2>/dev/null | wc -l) -ge 2 ]] && break; sleep 0.05; done
kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
done_epochs=$(($(wc -l <"$tmp/b/log.csv") - 1))
ls "$tmp/b" | grep -q "tmp-" && bad "a temporary checkpoint file was left visible as a checkpoint" || true
"${train[@]}" --out "$tmp/b" --resume >"$tmp/b2.log" 2>&1 || bad "resume failed: $(tail -2 "$tmp/b2.log")"
if [[ $done_epochs -ge 3 ]]; then bad "the run finished before it could be interrupted"
elif cmp -s "$tmp/a/model.safetensors" "$tmp/b/model.safetensors"; then ok "killed after epoch $done_epochs of 3, resumed: weights identical to the uninterrupted run"
else bad "resumed weights differ from the uninterrupted run"; fi
expect_error "resume with other options" "options differ" "${train[@]}" --lr 0.05 --out "$tmp/b" --resume
"$LRUNET" train --reuse 2 --epochs 4 --batch 64 --limit 4096 --test-limit 1000 --threads 1 --seed 7 --out "$tmp/b" --resume >"$tmp/b3.log" 2>&1 \
  && grep -q "note: this run started with 2 thread(s) and continues with 1" "$tmp/b3.log" \
  && ok "a resume on another thread count says its weights match only to rounding" || bad "no note on a thread-count change: $(tail -2 "$tmp/b3.log")"
expect_error "a diverging run stops with a message" "loss became" "$LRUNET" train --reuse 1 --epochs 1 --limit 512 --test-limit 100 --lr 1e30 --out "$tmp/d"
expect_usage_error "bad --reuse" "--reuse must be" "$LRUNET" train --reuse 0
expect_usage_error "a misspelt schedule" "'cosin' is invalid for '--schedule" "$LRUNET" train --schedule cosin
expect_usage_error "bad --arch" "--arch must be one of" "$LRUNET" train --arch resnet
expect_usage_error "a width ShuffleNetV2 does not have" "width_mult = '0.3'" "$LRUNET" train --arch shufflenetv2 --width 0.3

# The baselines train too: the loss falls and the checkpoint evaluates to what train printed.
for arch in "mobilenet 0.25" "mobilenetv2 0.25" "shufflenet 0.5" "shufflenetv2 0.25"; do
  set -- $arch
  "$LRUNET" train --arch "$1" --width "$2" --epochs 2 --batch 64 --limit 1024 --test-limit 300 --no-augment --seed 3 \
    --threads 2 --out "$tmp/$1" >"$tmp/$1.log" 2>&1 || { bad "train --arch $1 exited non-zero: $(tail -2 "$tmp/$1.log")"; continue; }
  first=$(awk -F, 'NR==2 {print $3}' "$tmp/$1/log.csv"); last=$(awk -F, 'NR==3 {print $3}' "$tmp/$1/log.csv")
  printed=$(grep -o "test accuracy [0-9.]*% ([0-9]*/300)" "$tmp/$1.log" | tail -1 | grep -o "[0-9]*/300")
  evaluated=$("$LRUNET" eval --weights "$tmp/$1/model.safetensors" --limit 300 2>/dev/null | grep -o "[0-9]*/300 correct" | grep -o "[0-9]*/300")
  awk -v f="$first" -v l="$last" 'BEGIN { exit !(l < f) }' && [[ -n $printed && $printed == "$evaluated" ]] \
    && ok "train --arch $1: loss $first -> $last, eval gives the printed $printed" || bad "train --arch $1: loss $first -> $last, printed '$printed', eval '$evaluated'"
done
# What train writes for MobileNetV2 has the authors' tensor names and shapes, so it loads into
# their PyTorch model by name (strict), as their checkpoint does.
if [[ -f $tmp/mobilenetv2/model.safetensors && -f $w ]]; then
  python3 - "$tmp/mobilenetv2/model.safetensors" "$w" <<'PY' && ok "MobileNetV2 checkpoint: the authors' names and shapes" || bad "MobileNetV2 checkpoint names differ"
import json, struct, sys
def header(p):
    with open(p, "rb") as f:
        n = struct.unpack("<Q", f.read(8))[0]
        h = json.loads(f.read(n))
    h.pop("__metadata__", None)
    return {k: v["shape"] for k, v in h.items() if not k.endswith("num_batches_tracked")}
ours, theirs = header(sys.argv[1]), header(sys.argv[2])
sys.exit(0 if ours == theirs else 1)
PY
fi
expect_error "train on a missing data dir" "no such file" "$LRUNET" train --data "$tmp/nodata" --out "$tmp/c"
# lrunet study: a tiny grid (smoke-test limits keep it apart from real results), resumable and
# skippable, and its statistics.
study=("$LRUNET" study --reuse 1,2 --seeds 1,2 --epochs 1 --limit 300 --test-limit 100 --validation 100 --results "$tmp/study" --runs "$tmp/study-runs")
"${study[@]}" --max-runs 2 >"$tmp/study0.log" 2>&1 \
  && [[ "$(cd "$tmp"/study/*/ && ls -d n*-s* | tr '\n' ' ')" == "n1-s1 n2-s1 " ]] \
  && ok "study --max-runs 2: seed 1 of both N first (complete pairs)" || bad "study --max-runs 2: $(cd "$tmp"/study/*/ 2>/dev/null && ls -d n*)"
if "${study[@]}" >"$tmp/study.log" 2>&1; then
  n=$(ls "$tmp"/study/*/n*/result.json 2>/dev/null | wc -l)
  [[ $n -eq 4 ]] && ok "study: four runs, each with its result.json" || bad "study: $n result files"
  # The per-image correctness McNemar reads agrees with the counted accuracy, run by run.
  python3 - "$tmp"/study/*/n*/result.json <<'PY' && ok "study: each run's image mask counts its test_correct" || bad "study: image masks disagree with test_correct"
import json, sys
for path in sys.argv[1:]:
    r = json.load(open(path))
    if sum(bin(b).count("1") for b in bytes.fromhex(r["correct"])) != r["test_correct"]: sys.exit(1)
PY
  grep -q "Verdict: none yet: the rule needs at least 3 seeds per arm (2 so far)" "$tmp/study/summary.md" \
    && ok "study: no verdict from two seeds per arm (the rule asks for three)" || bad "study: a verdict from two seeds"
  grep -q "N = 2 minus N = 1" "$tmp/study/summary.md" && grep -q "Welch 95% interval" "$tmp/study/summary.md" && grep -q "McNemar exact p" "$tmp/study/summary.md" \
    && [[ -s $tmp/study/summary.svg && -s $tmp/study/curves.svg ]] && ok "study: summary with the interval, McNemar and the charts" || bad "study: summary"
  "${study[@]}" >"$tmp/study2.log" 2>&1 && [[ $(grep -c "done, kept" "$tmp/study2.log") -eq 4 ]] && ! grep -q "epoch 1/1" "$tmp/study2.log" \
    && ok "study: a second invocation keeps the finished runs" || bad "study: reran finished runs"
  "$LRUNET" study --report --results "$tmp/study" | grep -q "^| 2 | 1, 2 |" && ok "study --report alone" || bad "study --report"
  # A second budget of seed 1 makes a trend with the first: the shared seed's difference per budget.
  "$LRUNET" study --reuse 1,2 --seeds 1 --epochs 2 --limit 300 --test-limit 100 --validation 100 --results "$tmp/study" --runs "$tmp/study-runs" >"$tmp/study3.log" 2>&1 \
    && grep -q "^## Budget trend: fashion-mnist-authors-train300-test100, N = 2 against N = 1" "$tmp/study/summary.md" \
    && grep -q "^| 1 | 2, 2 | " "$tmp/study/summary.md" && grep -q "^| 2 | 1, 1 | " "$tmp/study/summary.md" \
    && grep -Eq "^- Seed 1: the difference (rises|falls) at every larger budget|^- Seed 1: the difference does not move one way" "$tmp/study/summary.md" \
    && [[ -s $tmp/study/trend.svg ]] && ok "study: two budgets make the budget trend (table, direction, trend.svg)" || bad "study: budget trend"
else bad "study: $(tail -2 "$tmp/study.log")"; fi
"$LRUNET" study --recipe fancy >/dev/null 2>"$tmp/err"; rc=$?
[[ $rc -ne 0 && $rc -lt 128 ]] && grep -q -- "--recipe takes authors and plain" "$tmp/err" && ok "study with a bad recipe: usage error" || bad "study --recipe fancy (exit $rc)"

finish cli
