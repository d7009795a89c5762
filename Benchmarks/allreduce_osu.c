// Open MPI's own all-reduce figure, OSU-style (osu_allreduce's method): for each message size, a barrier, then
// MPI_Allreduce of that many floats timed `repeats` times; each repetition's time is the slowest rank's, and the
// median is printed in microseconds. The peer of `attend bench allreduce` (Benchmarks/allreduce.sh).
// Build: mpicc -O2 Benchmarks/allreduce_osu.c -o .cache/bench/allreduce_osu
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>

static int cmp(const void *a, const void *b) { double x = *(const double *)a, y = *(const double *)b; return x < y ? -1 : x > y; }

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    int rank, size;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    int repeats = argc > 1 ? atoi(argv[1]) : 20;
    double *times = malloc(sizeof(double) * repeats);
    for (long bytes = 1024; bytes <= (256L << 20); bytes *= 4) {
        long n = bytes / 4;
        float *buffer = malloc(bytes);
        for (long i = 0; i < n; i++) buffer[i] = 1;
        MPI_Allreduce(MPI_IN_PLACE, buffer, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);   // warm-up
        for (int r = 0; r < repeats; r++) {
            MPI_Barrier(MPI_COMM_WORLD);
            double t = MPI_Wtime();
            MPI_Allreduce(MPI_IN_PLACE, buffer, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
            times[r] = MPI_Wtime() - t;
        }
        MPI_Allreduce(MPI_IN_PLACE, times, repeats, MPI_DOUBLE, MPI_MAX, MPI_COMM_WORLD);
        qsort(times, repeats, sizeof(double), cmp);
        if (rank == 0) printf("%ld %.1f\n", bytes, times[repeats / 2] * 1e6);
        free(buffer);
    }
    free(times);
    MPI_Finalize();
    return 0;
}
