// The stop agreement (trainer/sync/stop_agreement.h) over real replicas: whichever ranks saw
// a stop signal, every rank is told at the same step, with the union of the signals, and the
// adaptive number of steps between checks is the same on every rank at every step.
#include <gtest/gtest.h>
#include <mpi.h>

#include <algorithm>
#include <string>

#include "collectives/mpi_communicator.h"
#include "tests/mpi/ps_fixtures.h"
#include "trainer/host/stop_signals.h"
#include "trainer/sync/stop_agreement.h"

namespace ringtrain {
namespace {

using namespace pstest;

constexpr std::chrono::milliseconds kTimeout{std::chrono::minutes(2)};

int64_t minOverRanks(int64_t value) {
  int64_t result = 0;
  MPI_Allreduce(&value, &result, 1, MPI_INT64_T, MPI_MIN, MPI_COMM_WORLD);
  return result;
}

int64_t maxOverRanks(int64_t value) {
  int64_t result = 0;
  MPI_Allreduce(&value, &result, 1, MPI_INT64_T, MPI_MAX, MPI_COMM_WORLD);
  return result;
}

struct Stopped {
  int64_t step = -1;
  std::string signals;
};

// Steps until the agreement says stop; rank `termRank` has seen SIGTERM from step
// `signalStep` on (none when it is -1), rank 0 SIGUSR1 from then on when `usr1Too`, and rank 1
// (0 in a world of one) SIGINT when `intToo`.
Stopped runUntilStopped(Communicator& comm, int termRank, int64_t signalStep, bool usr1Too,
                        bool intToo = false) {
  StopAgreement stop(comm, kTimeout);
  const int intRank = std::min(1, comm.size() - 1);
  for (int64_t step = 1; step <= 100000; ++step) {
    const bool signalled = step >= signalStep;
    SeenSignals seen;
    seen.term = signalled && comm.rank() == termRank;
    seen.usr1 = signalled && usr1Too && comm.rank() == 0;
    seen.interrupt = signalled && intToo && comm.rank() == intRank;
    const std::string signals = stop.afterStep(step, seen);
    // Every rank must be on the same schedule, or they would read different sums.
    const int64_t between = stop.stepsBetweenChecks();
    EXPECT_EQ(minOverRanks(between), maxOverRanks(between)) << "step " << step;
    if (!signals.empty()) return {step, signals};
  }
  return {};
}

TEST(StopAgreement, EveryRankStopsAtTheSameStep) {
  auto comm = makeCommunicator("ring", MPI_COMM_WORLD);
  const int termRank = comm->size() - 1;
  const Stopped stopped = runUntilStopped(*comm, termRank, 300, false);
  ASSERT_GE(stopped.step, 300) << "stopped before any rank saw a signal";
  EXPECT_EQ(minOverRanks(stopped.step), maxOverRanks(stopped.step));
  EXPECT_EQ(stopped.signals, "SIGTERM");
  // Steps that cost microseconds are checked far less often than every step, at most
  // kMaxStepsBetweenChecks apart, so the stop comes within two such periods.
  EXPECT_LE(stopped.step, 300 + 2 * StopAgreement::kMaxStepsBetweenChecks);
}

TEST(StopAgreement, ChecksGetRarerWhenStepsAreShort) {
  auto comm = makeCommunicator("ring", MPI_COMM_WORLD);
  StopAgreement stop(*comm, kTimeout);
  for (int64_t step = 1; step <= 200; ++step) stop.afterStep(step, {});
  EXPECT_GT(stop.stepsBetweenChecks(), 1);
  EXPECT_LE(stop.stepsBetweenChecks(), StopAgreement::kMaxStepsBetweenChecks);
}

TEST(StopAgreement, TheSignalsOfAllRanksAreJoined) {
  auto comm = makeCommunicator("mpi", MPI_COMM_WORLD);
  const Stopped stopped = runUntilStopped(*comm, comm->size() - 1, 5, true);
  EXPECT_EQ(minOverRanks(stopped.step), maxOverRanks(stopped.step));
  EXPECT_EQ(stopped.signals, "SIGTERM and SIGUSR1");
}

TEST(StopAgreement, AnInterruptAloneIsNamedAndEndsWithItsOwnCode) {
  auto comm = makeCommunicator("ring", MPI_COMM_WORLD);
  const Stopped stopped = runUntilStopped(*comm, -1, 5, false, true);
  EXPECT_EQ(minOverRanks(stopped.step), maxOverRanks(stopped.step));
  ASSERT_EQ(stopped.signals, "SIGINT");
  EXPECT_EQ(stopExitCode(stopped.signals), kExitInterrupted);
}

TEST(StopAgreement, APreemptionOutranksAnInterrupt) {
  auto comm = makeCommunicator("mpi", MPI_COMM_WORLD);
  const Stopped stopped = runUntilStopped(*comm, 0, 5, false, true);
  ASSERT_EQ(stopped.signals, "SIGTERM and SIGINT");
  // The scheduler will requeue the job: it must see the preemption's code.
  EXPECT_EQ(stopExitCode(stopped.signals), kExitPreempted);
}

}  // namespace
}  // namespace ringtrain
