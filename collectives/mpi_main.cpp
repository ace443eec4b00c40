#include "collectives/mpi_main.h"

#include <cstdio>
#include <exception>
#include <memory>

#include "core/error.h"

namespace ringtrain {

int runMpiMain(int* argc, char*** argv, const std::function<int(MpiContext&)>& body,
               int failureStatus) {
  std::unique_ptr<MpiContext> mpi;
  try {
    mpi = std::make_unique<MpiContext>(argc, argv);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.oneLine().c_str());
    return failureStatus;
  }
  try {
    return body(*mpi);
  } catch (const Error& e) {
    std::fprintf(stderr, "%s\n", e.oneLine(mpi->worldRank()).c_str());
  } catch (const std::exception& e) {
    std::fprintf(stderr, "[rank %d] error: %s\n", mpi->worldRank(), e.what());
  }
  std::fflush(stderr);
  MpiContext::abortJob(failureStatus);
}

}  // namespace ringtrain
