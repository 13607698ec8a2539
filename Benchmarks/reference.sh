#!/usr/bin/env bash
# Builds lrunet-bench (or PRODUCT) as it was at COMMIT, from this clone's history, into
# .build-perf-ref: the performance check measures it beside the current build on a CPU that has no
# baseline yet, and `make bench-ab` times the reference lrunet against this one.
# Prints the binary's path as its last line of standard output (build output goes to stderr).
# Exit 3: the commit is not in this clone (a shallow clone), so there is nothing to compare with.
set -euo pipefail
commit=${1:?usage: Benchmarks/reference.sh COMMIT [PRODUCT]}
product=${2:-lrunet-bench}
cd "$(dirname "$0")/.."
dir=.build-perf-ref
git cat-file -e "$commit^{commit}" 2>/dev/null || { echo "the reference commit $commit is not in this clone's history"; exit 3; }
if [[ "$(cat "$dir/commit" 2>/dev/null)" != "$commit" ]]; then
  rm -rf "$dir/src"; mkdir -p "$dir/src"
  git archive "$commit" | tar -x -C "$dir/src"
  echo "$commit" >"$dir/commit"
fi
# REF_BUILD_FLAGS: the flags the build it is compared with used (default: a plain release build).
read -r -a flags <<<"${REF_BUILD_FLAGS:--c release}"
build=(swift build "${flags[@]}" --package-path "$dir/src" --scratch-path "$dir/build" --product "$product")
echo "building $product at ${commit:0:12} for comparison" >&2
"${build[@]}" >&2
echo "$("${build[@]}" --show-bin-path)/$product"
