# The example packages, run as their users would: Examples/CustomReuse trains a reused network
# of its own description for one epoch on Fashion-MNIST, saves it, reloads it into a freshly
# built network and evaluates that.
#
#   CUSTOM_REUSE=Examples/CustomReuse/.build/release/CustomReuse bash Tests/examples.sh
set -u
CUSTOM_REUSE=${CUSTOM_REUSE:?path to the CustomReuse binary}
source "$(dirname "$0")/check.sh"

"$CUSTOM_REUSE" --out "$tmp/run" >"$tmp/log" 2>&1 || { bad "CustomReuse failed: $(tail -2 "$tmp/log")"; finish examples; exit 1; }
cat "$tmp/log"
trained=$(sed -n 's/^epoch 1: .*test accuracy \([0-9.]*\)%$/\1/p' "$tmp/log")
reloaded=$(sed -n 's/^reloaded from .*: test accuracy \([0-9.]*\)% .*/\1/p' "$tmp/log")
[[ -n $trained && $trained == "$reloaded" ]] && ok "the reloaded network scores what the trained one did ($reloaded%)" \
  || bad "trained $trained%, reloaded $reloaded%"
awk -v a="$reloaded" 'BEGIN { exit !(a >= 70) }' && ok "one epoch learns: $reloaded% >= 70%" || bad "one epoch gave $reloaded%"
read -r shared unrolled < <(sed -n 's/^parameters: \([0-9]*\) shared, \([0-9]*\) unrolled$/\1 \2/p' "$tmp/log")
[[ -n ${shared:-} && $unrolled -gt $shared ]] && ok "parameters: $shared shared < $unrolled unrolled" || bad "parameter counts: ${shared:-?} / ${unrolled:-?}"
read -r fetched requested < <(sed -n 's/^conv weight bytes per forward: \([0-9]*\) fetched, \([0-9]*\) unrolled$/\1 \2/p' "$tmp/log")
[[ -n ${fetched:-} && $requested -gt $fetched ]] && ok "conv bytes: $fetched fetched < $requested unrolled" || bad "byte counts: ${fetched:-?} / ${requested:-?}"
finish examples
