// gtest main for the multi-process tests, run under mpirun at several world sizes. Only rank
// 0 prints gtest's normal output; other ranks print just their failures, prefixed with the
// rank. The exit status is agreed across ranks, so a failure on any rank fails the run.
#include <gtest/gtest.h>
#include <mpi.h>

#include <cstdio>
#include <memory>
#include <string>

#include "collectives/mpi_main.h"
#include "core/error.h"

namespace {

class RankFailurePrinter : public testing::EmptyTestEventListener {
 public:
  explicit RankFailurePrinter(int rank) : rank_(rank) {}
  // Remembered here: asking UnitTest for the current test inside OnTestPartResult would take
  // a lock gtest already holds there.
  void OnTestStart(const testing::TestInfo& test) override {
    test_ = std::string(test.test_suite_name()) + "." + test.name();
  }
  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (!result.failed()) return;
    std::fprintf(stderr, "[rank %d] FAILED %s at %s:%d\n%s\n", rank_, test_.c_str(),
                 result.file_name() ? result.file_name() : "?", result.line_number(),
                 result.message());
  }

 private:
  int rank_;
  std::string test_;
};

int runTests(const ringtrain::MpiContext& mpi, int* argc, char** argv) {
  testing::InitGoogleTest(argc, argv);
  if (mpi.worldRank() != 0) {
    testing::TestEventListeners& listeners = testing::UnitTest::GetInstance()->listeners();
    // Release hands ownership back; the unique_ptr deletes the default printer.
    std::unique_ptr<testing::TestEventListener> quiet(
        listeners.Release(listeners.default_result_printer()));
    listeners.Append(std::make_unique<RankFailurePrinter>(mpi.worldRank()).release());
  }
  int local = RUN_ALL_TESTS() != 0 ? 1 : 0;
  int anyFailed = 0;
  ringtrain::checkMpi(MPI_Allreduce(&local, &anyFailed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD),
                      "MPI_Allreduce (test result)", mpi.worldRank());
  if (mpi.worldRank() == 0 && anyFailed && !local) {
    std::fprintf(stderr, "rank 0 passed, but another rank failed (see [rank N] lines)\n");
  }
  return anyFailed;
}

}  // namespace

int main(int argc, char** argv) {
  return ringtrain::runMpiMain(
      &argc, &argv, [&](ringtrain::MpiContext& mpi) { return runTests(mpi, &argc, argv); },
      /*failureStatus=*/2);
}
