#ifndef COPENBLAS_SHIM_H
#define COPENBLAS_SHIM_H
// OpenBLAS' cblas.h also declares openblas_set_num_threads and openblas_get_config.
#include <cblas.h>
#include <stddef.h>

// LAPACK's symmetric eigensolver (divide and conquer), as built into libopenblas from the Fortran
// sources. why declared here: libopenblas-dev ships no lapack.h. Fortran ABI: every argument by
// reference, arrays column-major, and gfortran appends one hidden length per CHARACTER argument
// (size_t since GCC 8), in order: here jobz's, then uplo's. Integers are 32-bit (Debian's libopenblas
// is LP64; libopenblas64 would need int64_t).
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_length, size_t uplo_length);
#endif
