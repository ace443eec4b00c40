// Checked CUDA runtime and NCCL calls: every return code that is not success becomes a
// CommError naming the call, the rank, the library's own error text and a HINT.
// Only for the NCCL build (collectives/nccl_*.cpp): includes the CUDA and NCCL headers.
#pragma once

#include <cuda_runtime_api.h>
#include <nccl.h>

#include <string>

namespace ringtrain {

// Throws CommError("<call> failed on rank R: <cudaGetErrorString> (cudaErrorX=N)").
void checkCuda(cudaError_t rc, const char* call, int rank);

// Throws CommError("<call> failed on rank R: <ncclGetErrorString> (ncclX=N). <last error>"),
// where the last error is NCCL's own detail for `comm` (any communicator when null).
void checkNccl(ncclResult_t rc, const char* call, int rank, ncclComm_t comm = nullptr);

// The enumerator's name ("ncclSystemError") and what the user can do about it.
const char* ncclResultName(ncclResult_t rc);
std::string ncclHint(ncclResult_t rc);
std::string cudaHint(cudaError_t rc);

// NCCL's detail about the last failure on `comm`, or "" when it has none.
std::string ncclLastError(ncclComm_t comm);

}  // namespace ringtrain
