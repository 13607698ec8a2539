// One libFuzzer harness per reader: this file is compiled once per target with
// -D FUZZ_<TARGET> (see build.sh). libFuzzer supplies `main`.
import LruNetFuzzTargets

#if FUZZ_SAFETENSORS
let target = FuzzTarget.safetensors
#elseif FUZZ_NPY
let target = FuzzTarget.npy
#elseif FUZZ_IDX
let target = FuzzTarget.idx
#elseif FUZZ_CIFAR
let target = FuzzTarget.cifar
#elseif FUZZ_CHECKPOINT
let target = FuzzTarget.checkpoint
#elseif FUZZ_T7
let target = FuzzTarget.t7
#endif

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafeRawPointer?, _ count: Int) -> CInt {
    target.run(UnsafeRawBufferPointer(start: start, count: count))
    return 0
}
