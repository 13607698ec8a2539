// Open MPI for the data-parallel trainer (Debian: libopenmpi-dev; pkg-config "ompi" gives the
// include path). MPI_COMM_WORLD, MPI_FLOAT and MPI_SUM are macros over Open MPI's globals, which
// Swift cannot import, so the few calls the trainer makes are wrapped here. Errors are fatal
// (MPI's default handler): a collective that fails, or whose peer died, ends the whole job
// instead of leaving the other processes waiting.
#include <mpi.h>
#include <limits.h>

/// Initialises MPI for calls from the main thread only; the rank and size of MPI_COMM_WORLD.
static inline int lru_mpi_init(int *rank, int *size) {
    int provided = 0;
    int rc = MPI_Init_thread(0, 0, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return rc;
    MPI_Comm_rank(MPI_COMM_WORLD, rank);
    MPI_Comm_size(MPI_COMM_WORLD, size);
    return MPI_SUCCESS;
}

/// In-place sums over every process, in pieces of at most INT_MAX elements.
static inline void lru_mpi_sum_float(float *values, long count) {
    for (long at = 0; at < count; at += INT_MAX) {
        long n = count - at < INT_MAX ? count - at : INT_MAX;
        MPI_Allreduce(MPI_IN_PLACE, values + at, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
}

static inline void lru_mpi_sum_double(double *values, long count) {
    for (long at = 0; at < count; at += INT_MAX) {
        long n = count - at < INT_MAX ? count - at : INT_MAX;
        MPI_Allreduce(MPI_IN_PLACE, values + at, (int)n, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    }
}

static inline void lru_mpi_broadcast(void *bytes, long count, int root) {
    for (long at = 0; at < count; at += INT_MAX) {
        long n = count - at < INT_MAX ? count - at : INT_MAX;
        MPI_Bcast((char *)bytes + at, (int)n, MPI_BYTE, root, MPI_COMM_WORLD);
    }
}

static inline void lru_mpi_abort(int code) { MPI_Abort(MPI_COMM_WORLD, code); }
static inline void lru_mpi_finalize(void) { MPI_Finalize(); }

/// The library's version line (e.g. "Open MPI v4.1.4, ...").
static inline void lru_mpi_version(char *text, int capacity) {
    char buffer[MPI_MAX_LIBRARY_VERSION_STRING];
    int length = 0;
    MPI_Get_library_version(buffer, &length);
    int i = 0;
    for (; i < capacity - 1 && i < length && buffer[i] != '\n'; i++) text[i] = buffer[i];
    text[i] = 0;
}
