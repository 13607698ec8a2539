#!/bin/sh
# Builds one libFuzzer binary per reader into .build-fuzz/harness/. SwiftPM builds the library
# with coverage and AddressSanitizer; swiftc links each harness itself, because SwiftPM links
# executables with its own `main` and libFuzzer brings one.
set -eu
cd "$(dirname "$0")/.."
SCRATCH=.build-fuzz
# One -sanitize=fuzzer,address: given as two flags (SwiftPM's --sanitize), swiftc keeps only the last.
swift build -c release --scratch-path "$SCRATCH" --target LruNetFuzzTargets \
    -Xswiftc -sanitize=fuzzer,address -Xcc -fsanitize=fuzzer-no-link,address
B="$SCRATCH/release"
mkdir -p "$SCRATCH/harness"
for t in safetensors npy idx cifar checkpoint t7; do
    T=$(echo "$t" | tr a-z A-Z)
    swiftc -O -parse-as-library -sanitize=fuzzer,address -D "FUZZ_$T" -module-name "Fuzz$T" \
        -I "$B/Modules" -I Modules/COpenBLAS -I Modules/CZlib \
        -Xcc -fmodule-map-file="$B/CLruNetKernels.build/module.modulemap" -Xcc -I -Xcc Sources/CLruNetKernels/include \
        Fuzz/Harness.swift "$B"/LruNetFuzzTargets.build/*.o "$B"/LruNet.build/*.o "$B"/CLruNetKernels.build/*.o \
        -lopenblas -lz -o "$SCRATCH/harness/fuzz-$t" 2> "$SCRATCH/harness/link-$t.log" \
        || { cat "$SCRATCH/harness/link-$t.log"; exit 1; }     # on success only gold's notes on ASan's local symbols
done
echo "harnesses in $SCRATCH/harness/"
