// OpenBLAS's CBLAS interface (Debian: libopenblas-dev puts cblas.h in
// /usr/include/x86_64-linux-gnu, which clang searches by default).
// cblas.h also declares openblas_set_num_threads / openblas_get_num_threads,
// which we need to keep OpenBLAS's threads and ours from oversubscribing cores.
#include <cblas.h>
