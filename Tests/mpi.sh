#!/usr/bin/env bash
# Data-parallel training under Open MPI, two processes on this machine (make test-mpi):
#  - with synchronised BatchNorm, 2 processes end where 1 process with the same global batch
#    ends, to float32 rounding (lrunet diff), with the same evaluated accuracy;
#  - per-process BatchNorm does not (the measure can fail), yet keeps both processes' weights equal;
#  - a run resumes on another number of processes;
#  - a process that dies ends the job with a message instead of a hang;
#  - a build without MPI refuses to run as several processes.
# The data are noise images in CIFAR-10's binary format, without augmentation: real images and
# padded crops have flat regions whose equal activations tie in max pooling, and a split batch
# can flip such a tie (docs/distributed.md).
#
#   LRUNET=.build-mpi/release/lrunet PLAIN=.build/release/lrunet bash Tests/mpi.sh
set -u
LRUNET=${LRUNET:?path to an lrunet built with --traits MPI}
PLAIN=${PLAIN:-}
source "$(dirname "$0")/check.sh"
mpi=(mpirun --allow-run-as-root --oversubscribe -np 2)

# 5 x 128 training and 200 test images, labels cycling 0..9, pixels from a seeded generator.
data=$tmp/cifar; mkdir -p "$data"
perl -e 'srand(7); for my $f (@ARGV) { my $n = $f =~ /test/ ? 200 : 128; open(my $o, ">", $f) or die;
  binmode $o; for my $i (0 .. $n - 1) { print $o pack("C", $i % 10), pack("C*", map { int(rand(256)) } 1 .. 3072) } }' \
  "$data"/data_batch_{1,2,3,4,5}.bin "$data/test_batch.bin"

run=(train --dataset cifar10 --data "$data" --reuse 3 --epochs 2 --batch 64 --lr 0.002 --threads 1 --seed 5 --test-limit 200 --no-augment)
# The equivalence run: 4 steps of 64 images.
steps=("${run[@]}" --epochs 1 --limit 256)

# 1. Equivalence. Rounding differs (the batch statistics are summed in two parts), and where it
# flips a ReLU or max-pool tie a gradient moves: the tolerance allows one such flip (about 1e-3
# of a weight after a few steps); a missing gradient sum or per-process statistics move the
# weights by 1e-1 and more.
"$LRUNET" "${steps[@]}" --out "$tmp/one" >"$tmp/one.log" 2>&1 || bad "1-process run: $(tail -2 "$tmp/one.log")"
"${mpi[@]}" "$LRUNET" "${steps[@]}" --out "$tmp/two" >"$tmp/two.log" 2>&1 || bad "2-process run: $(tail -3 "$tmp/two.log")"
if "$LRUNET" diff "$tmp/one/model.safetensors" "$tmp/two/model.safetensors" --tolerance 1e-3 >"$tmp/diff" 2>&1; then
  ok "2 processes vs 1, synchronised BatchNorm: $(tail -1 "$tmp/diff")"
else bad "2 processes vs 1: $(tail -2 "$tmp/diff")"; fi
acc() { grep -o 'test accuracy [0-9.]*% ([0-9]*/[0-9]*)' "$1" | tail -1; }
if [[ -n "$(acc "$tmp/one.log")" && "$(acc "$tmp/one.log")" == "$(acc "$tmp/two.log")" ]]; then ok "same evaluated accuracy: $(acc "$tmp/two.log")"
else bad "accuracy: 1 process '$(acc "$tmp/one.log")', 2 processes '$(acc "$tmp/two.log")'"; fi
grep -q "gradient sums 4 calls" "$tmp/two.log" && ok "one gradient sum per step: $(grep -o 'gradient sums[^;]*' "$tmp/two.log")" \
  || bad "gradient sums: $(grep collectives "$tmp/two.log")"
[[ ! -e "$tmp/two/log.csv" ]] && bad "process 0 wrote no log" || ok "process 0 wrote the checkpoint and the log"

# 2. Per-process BatchNorm: visibly another run, by the same measure and tolerance as check 1.
"${mpi[@]}" "$LRUNET" "${steps[@]}" --batch-norm per-process --out "$tmp/local" >"$tmp/local.log" 2>&1 || bad "per-process run: $(tail -3 "$tmp/local.log")"
if "$LRUNET" diff "$tmp/one/model.safetensors" "$tmp/local/model.safetensors" --tolerance 1e-3 >"$tmp/diff" 2>&1; then
  bad "per-process BatchNorm matched the 1-process run: the measure cannot fail"
else ok "per-process BatchNorm differs: $(grep largest "$tmp/diff")"; fi

# 3. Resume on another number of processes: 1 epoch on 2 processes, the second on 1; and the reverse.
"${mpi[@]}" "$LRUNET" "${run[@]}" --epochs 1 --out "$tmp/grow" >/dev/null 2>&1
"$LRUNET" "${run[@]}" --epochs 1 --out "$tmp/shrink" >/dev/null 2>&1
"$LRUNET" "${run[@]}" --resume --out "$tmp/grow" >"$tmp/grow.log" 2>&1 && grep -q "continues on 1" "$tmp/grow.log" \
  && ok "2-process checkpoint resumed on 1 process" || bad "resume 2 -> 1: $(tail -2 "$tmp/grow.log")"
"${mpi[@]}" "$LRUNET" "${run[@]}" --resume --out "$tmp/shrink" >"$tmp/shrink.log" 2>&1 && grep -q "epoch 2/2" "$tmp/shrink.log" \
  && ok "1-process checkpoint resumed on 2 processes" || bad "resume 1 -> 2: $(tail -3 "$tmp/shrink.log")"

# 4. A process killed mid-run: the job ends (non-zero) within a minute, naming what happened.
"${mpi[@]}" "$LRUNET" "${run[@]}" --epochs 50 --out "$tmp/killed" >"$tmp/killed.log" 2>&1 &
job=$!
# A rank: an lrunet process (not mpirun) of this run, found in /proc (procps may be absent).
rank_pid() {
  local p; for p in /proc/[0-9]*; do
    [[ "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" == "$LRUNET train "*"$tmp/killed"* ]] && { echo "${p#/proc/}"; return; }
  done
}
for _ in $(seq 100); do victim=$(rank_pid); [[ -n "$victim" ]] && break; sleep 0.1; done
sleep 3; kill -9 "$victim" 2>/dev/null
start=$(date +%s)
( sleep 60; kill -9 $job 2>/dev/null ) & guard=$!
wait $job; rc=$?; took=$(( $(date +%s) - start ))
kill $guard 2>/dev/null
if [[ $rc -ne 0 && $took -lt 60 ]] && grep -qiE "signal 9|killed|exited" "$tmp/killed.log"; then
  ok "a killed process ended the job in ${took}s (exit $rc): $(grep -iE 'signal 9|killed' "$tmp/killed.log" | head -1 | cut -c1-120)"
else bad "killed process: exit $rc after ${took}s; $(tail -3 "$tmp/killed.log")"; fi

# 5. A build without MPI under mpirun: one line, and no training.
if [[ -n "$PLAIN" ]]; then
  "${mpi[@]}" "$PLAIN" "${run[@]}" --out "$tmp/plain" >"$tmp/plain.log" 2>&1
  grep -q "built without MPI" "$tmp/plain.log" && [[ ! -e "$tmp/plain/model.safetensors" ]] \
    && ok "a build without MPI refuses to run as 2 processes" || bad "plain build under mpirun: $(tail -2 "$tmp/plain.log")"
fi
finish "mpi checks"
