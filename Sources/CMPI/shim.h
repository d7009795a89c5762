// MPI through Debian's Open MPI (libopenmpi-dev, pkg-config ompi-c). MPI's handles (MPI_COMM_WORLD, MPI_FLOAT,
// MPI_SUM, MPI_IN_PLACE) are macros over implementation symbols, which Swift cannot import; these functions return
// them. Everything else (MPI_Init_thread, MPI_Allreduce, ...) is imported as declared in mpi.h.
#ifndef ATTEND_CMPI_SHIM_H
#define ATTEND_CMPI_SHIM_H
#include <mpi.h>

static inline MPI_Comm attend_mpi_comm_world(void) { return MPI_COMM_WORLD; }
static inline MPI_Datatype attend_mpi_float(void) { return MPI_FLOAT; }
static inline MPI_Datatype attend_mpi_double(void) { return MPI_DOUBLE; }
static inline MPI_Datatype attend_mpi_uint64(void) { return MPI_UINT64_T; }
static inline MPI_Datatype attend_mpi_byte(void) { return MPI_BYTE; }
static inline MPI_Op attend_mpi_sum(void) { return MPI_SUM; }
static inline MPI_Op attend_mpi_min(void) { return MPI_MIN; }
static inline MPI_Op attend_mpi_max(void) { return MPI_MAX; }
static inline void *attend_mpi_in_place(void) { return MPI_IN_PLACE; }
static inline int attend_mpi_success(void) { return MPI_SUCCESS; }
static inline int attend_mpi_thread_funneled(void) { return MPI_THREAD_FUNNELED; }
static inline int attend_mpi_max_error_string(void) { return MPI_MAX_ERROR_STRING; }
#endif
