#ifndef COPENBLAS_SHIM_H
#define COPENBLAS_SHIM_H
// OpenBLAS' cblas.h also declares openblas_set_num_threads and openblas_get_config.
#include <cblas.h>
#endif
