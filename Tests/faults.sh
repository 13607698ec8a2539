#!/usr/bin/env bash
# Faults that must lose nothing: crashes at every step of a checkpoint save and at random
# moments, a full disk, an unwritable or corrupt checkpoint, non-finite numbers. Each check
# fails if its guarantee breaks. Needs the lrunet binary and Debian's Fashion-MNIST.
#
#   LRUNET=.build/release/lrunet bash Tests/faults.sh        (TRIALS=20 random kills by default)
set -u
LRUNET=${LRUNET:?path to the lrunet binary}
PRETRAINED=${PRETRAINED:-../shared/pretrained}
TRIALS=${TRIALS:-20}
source "$(dirname "$0")/check.sh"

# A checkpoint's weights and momentum: the model file, and the optimizer file's tensor data
# (its metadata holds the epoch history, with timings that differ between runs).
tensor_data() { local n; n=$(od -An -tu8 -N8 "$1" 2>/dev/null) && tail -c +$((n + 9)) "$1"; }
digest() { { cat "$1/model.safetensors"; tensor_data "$1/optimizer.safetensors"; } 2>/dev/null | md5sum | cut -c1-32; }
leftovers() { ls -a "$1" | grep -E '\.pending|\.tmp-|\.write-test-' || true; }

# A 3-epoch run small enough to repeat many times; the reference is uninterrupted.
train=("$LRUNET" train --reuse 1 --epochs 3 --batch 64 --limit 384 --test-limit 128 --threads 2 --seed 11)
t0=$(date +%s.%N)
"${train[@]}" --out "$tmp/ref" >"$tmp/ref.log" 2>&1 || { bad "reference run: $(tail -2 "$tmp/ref.log")"; exit 1; }
run_ms=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%d", (b - a) * 1000 }')
ref=$(digest "$tmp/ref")

# resume_to_end DIR: --resume until the run completes (each resume may itself be killed).
resume_to_end() {
  for _ in 1 2 3 4 5; do
    "${train[@]}" --out "$1" --resume >"$1.resume.log" 2>&1 && return 0
  done
  return 1
}

# 1. A crash at each step of the save of epoch 2 (LRUNET_CRASH_AT, see Checkpoint.swift): the
#    directory holds epoch 1's or epoch 2's checkpoint, and --resume ends with the reference weights.
for point in "write:optimizer.safetensors.pending@2" "checkpoint-optimizer-pending@2" "write:model.safetensors.pending@2" \
             "checkpoint-committed@2" "checkpoint-optimizer-renamed@2" "checkpoint-renamed@2" \
             "write:log.csv@1" "write:curves.svg@2"; do
  d="$tmp/crash-${point//[:@]/-}"
  LRUNET_CRASH_AT=$point "${train[@]}" --out "$d" >"$d.log" 2>&1; rc=$?
  if [[ $rc -ne 137 ]]; then bad "crash at $point: the run was not killed (exit $rc)"; continue; fi
  if resume_to_end "$d" && [[ $(digest "$d") == "$ref" && -z $(leftovers "$d") ]]; then
    ok "killed at $point, resumed: weights identical to the uninterrupted run"
  else bad "killed at $point: resume failed or weights differ ($(tail -1 "$d.resume.log"))"; fi
done

# 2. SIGKILL at random moments (seeded, so a failure can be replayed): every resume succeeds
#    and ends with the reference weights.
RANDOM=2026
good=0
for trial in $(seq 1 "$TRIALS"); do
  d="$tmp/kill-$trial"
  ms=$(( RANDOM % run_ms ))
  "${train[@]}" --out "$d" >"$d.log" 2>&1 &
  pid=$!
  sleep "$(awk -v m="$ms" 'BEGIN { printf "%.3f", m / 1000 }')"
  kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
  epochs=$(( $(cat "$d/log.csv" 2>/dev/null | wc -l) - 1 ))
  if resume_to_end "$d" && [[ $(digest "$d") == "$ref" && -z $(leftovers "$d") ]]; then good=$((good + 1))
  else bad "random kill $trial at ${ms} ms (after $epochs epochs): $(tail -1 "$d.resume.log")"; fi
done
[[ $good -eq $TRIALS ]] && ok "$TRIALS random SIGKILLs over the ${run_ms} ms run: every --resume ended with the reference weights"

# 3. The disk fills while a checkpoint is written (a file size limit below the checkpoint's
#    size): a one-line error, the previous checkpoint byte for byte, no stray files.
cp -r "$tmp/ref" "$tmp/full"
expect_error "a full disk during a save is reported" "File too large; the previous checkpoint is kept" \
  bash -c "ulimit -f 200; exec \"\$@\" --out '$tmp/full' --resume --epochs 4" _ "${train[@]}"
[[ $(digest "$tmp/full") == "$ref" && -z $(leftovers "$tmp/full") ]] && ok "after the failed save the previous checkpoint is intact" \
  || bad "the previous checkpoint changed or stray files remain: $(leftovers "$tmp/full")"
resume_to_end "$tmp/full" && [[ $(digest "$tmp/full") == "$ref" ]] && ok "and the run resumes from it" || bad "resume after a full disk"

# 4. An output directory that cannot be written: the error comes at once, before data loading.
expect_error "an --out under /proc" "cannot create the directory" "${train[@]}" --out /proc/lrunet-faults
echo x >"$tmp/plain-file"
expect_error "an --out below a regular file" "cannot create the directory" "${train[@]}" --out "$tmp/plain-file/run"

# 5. A corrupt or truncated checkpoint at resume: a clear error, and nothing overwritten.
for how in truncated flipped; do
  d="$tmp/corrupt-$how"; cp -r "$tmp/ref" "$d"
  size=$(stat -c %s "$d/model.safetensors")
  if [[ $how == truncated ]]; then truncate -s $((size / 2)) "$d/model.safetensors"; frag="truncated"
  else printf '\x00' | dd of="$d/model.safetensors" bs=1 seek=20 conv=notrunc 2>/dev/null; frag="not valid"; fi
  before=$(digest "$d")
  expect_error "resume from a checkpoint with its model file $how" "$frag" "${train[@]}" --out "$d" --resume --epochs 4
  [[ $(digest "$d") == "$before" ]] && ok "the $how checkpoint is left as it was" || bad "the $how checkpoint was overwritten"
done
"${train[@]}" --epochs 1 --out "$tmp/e1" >/dev/null 2>&1        # the same run stopped after epoch 1
d="$tmp/mixed"; cp -r "$tmp/ref" "$d"; cp "$tmp/e1/optimizer.safetensors" "$d/"
expect_error "model and optimizer files from different epochs" "disagree" "${train[@]}" --out "$d" --resume

# 6. Non-finite numbers: in predict's input, in a checkpoint's weights, and in outputs that
#    overflow; never a silent NaN.
w="$PRETRAINED/fashionmnist-lru1-09117.safetensors"
if [[ -f $w ]]; then
  python3 - "$w" "$tmp" <<'EOF'
import json, struct, sys
src, out = sys.argv[1], sys.argv[2]
raw = bytearray(open(src, "rb").read())
n = struct.unpack("<Q", raw[:8])[0]; header = json.loads(raw[8:8 + n]); base = 8 + n
start = header["features.0.weight"]["data_offsets"][0]
def save(name, values):
    b = bytearray(raw)
    for i, v in enumerate(values): b[base + start + 4 * i: base + start + 4 * i + 4] = struct.pack("<f", v)
    open(f"{out}/{name}", "wb").write(b)
save("nan-weight.safetensors", [float("nan")])
save("huge-weights.safetensors", [3e38] * 9)          # finite weights whose activations overflow
def npy(name, values):
    head = "{'descr': '<f4', 'fortran_order': False, 'shape': (1, 1, 28, 28), }"
    head += " " * (118 - len(head)) + "\n"
    open(f"{out}/{name}", "wb").write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head.encode()
                                       + struct.pack("<784f", *values))
npy("ones.npy", [1.0] * 784)
npy("inf.npy", [0.5] * 783 + [float("inf")])
EOF
  expect_error "predict with an infinite input value" "values must be finite" "$LRUNET" predict --weights "$w" --input "$tmp/inf.npy" --output "$tmp/y.npy"
  expect_error "a checkpoint with a NaN weight" "has nan at index 0" "$LRUNET" predict --weights "$tmp/nan-weight.safetensors" --input "$tmp/ones.npy" --output "$tmp/y.npy"
  expect_error "weights whose outputs overflow: predict" "overflow float32" "$LRUNET" predict --weights "$tmp/huge-weights.safetensors" --input "$tmp/ones.npy" --output "$tmp/y.npy"
  expect_error "weights whose outputs overflow: eval" "overflow float32" "$LRUNET" eval --weights "$tmp/huge-weights.safetensors" --limit 10
  [[ ! -e $tmp/y.npy ]] && ok "no output file was written for any of them" || bad "an output file was written"
else
  echo "skip: $w not found (non-finite checks)"
fi

finish faults
