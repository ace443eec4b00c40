// decideOnRankZero (trainer/sync/root_decision.h): what rank 0 alone decides, every rank
// learns, and a failure there ends every rank with rank 0's kind, text, hint and status.
// Also findLineMismatch (trainer/sync/fingerprint.h) on configs that differ by rank.
#include <gtest/gtest.h>
#include <mpi.h>

#include <string>

#include "collectives/mpi_communicator.h"
#include "core/error.h"
#include "trainer/config/config.h"
#include "trainer/sync/fingerprint.h"
#include "trainer/sync/root_decision.h"

namespace ringtrain {
namespace {

constexpr std::chrono::milliseconds kTimeout{std::chrono::minutes(2)};

class RootDecision : public ::testing::TestWithParam<std::string> {};

TEST_P(RootDecision, SuccessRunsOnRankZeroOnly) {
  auto comm = makeCommunicator(GetParam(), MPI_COMM_WORLD);
  int calls = 0;
  decideOnRankZero(*comm, kTimeout, [&] { ++calls; });
  EXPECT_EQ(calls, comm->rank() == 0 ? 1 : 0);
}

TEST_P(RootDecision, FailureIsEveryRanksWithItsKindHintAndStatus) {
  auto comm = makeCommunicator(GetParam(), MPI_COMM_WORLD);
  // A long message (more than any fixed row) with the characters a path may hold.
  const std::string message = "run directory /tmp/ä b/" + std::string(600, 'x') + " is in use";
  try {
    decideOnRankZero(*comm, kTimeout,
                     [&] { throw RunDirError(message, "give it another --run-dir", 0); });
    FAIL() << "no error on rank " << comm->rank();
  } catch (const RunDirError& e) {
    EXPECT_EQ(comm->rank(), 0) << "only rank 0 rethrows its own type";
    EXPECT_EQ(e.what(), message);
  } catch (const RelayedError& e) {
    EXPECT_NE(comm->rank(), 0);
    EXPECT_STREQ(e.kind(), "run directory");
    EXPECT_EQ(e.exitCode(), kExitRunDir);
    EXPECT_EQ(e.what(), message);
    EXPECT_EQ(e.hint(), "give it another --run-dir");
    EXPECT_EQ(e.rank(), comm->rank());
    EXPECT_EQ(e.oneLine(), "[rank " + std::to_string(comm->rank()) + "] run directory error: " +
                               message + " HINT: give it another --run-dir");
  }
  // A library's exception becomes an internal error everywhere.
  try {
    decideOnRankZero(*comm, kTimeout, [] { throw std::runtime_error("boom"); });
    FAIL() << "no error on rank " << comm->rank();
  } catch (const RelayedError& e) {
    EXPECT_STREQ(e.kind(), "internal");
    EXPECT_EQ(e.exitCode(), kExitInternal);
    EXPECT_STREQ(e.what(), "boom");
  } catch (const std::runtime_error& e) {
    EXPECT_EQ(comm->rank(), 0);
    EXPECT_STREQ(e.what(), "boom");
  }
  // And the communicator is still in step afterwards.
  int calls = 0;
  decideOnRankZero(*comm, kTimeout, [&] { ++calls; });
  EXPECT_EQ(calls, comm->rank() == 0 ? 1 : 0);
}

INSTANTIATE_TEST_SUITE_P(Backends, RootDecision, ::testing::Values("ring", "mpi"));

TEST(ConfigAgreement, TheFirstDifferingKeyAndBothValues) {
  auto comm = makeCommunicator("ring", MPI_COMM_WORLD);
  Config same;
  EXPECT_FALSE(findLineMismatch(same.agreedLines(), "keys", *comm, kTimeout));

  Config perRank;
  perRank.train.threads = comm->rank() + 1;  // may differ: not compared
  perRank.data.dir = "/data/" + std::to_string(comm->rank());
  EXPECT_FALSE(findLineMismatch(perRank.agreedLines(), "keys", *comm, kTimeout));

  if (comm->size() < 2) GTEST_SKIP() << "needs 2 ranks";
  Config differs;
  const int last = comm->size() - 1;
  if (comm->rank() == last) {
    differs.optimizer.lr = 0.5;
    differs.train.seed = 7;  // later in the schema: the first difference is lr
  }
  const auto mismatch = findLineMismatch(differs.agreedLines(), "keys", *comm, kTimeout);
  ASSERT_TRUE(mismatch);
  EXPECT_EQ(mismatch->rank, last);
  EXPECT_EQ(mismatch->reference, "optimizer.lr: 0.05");
  EXPECT_EQ(mismatch->other, "optimizer.lr: 0.5");
}

}  // namespace
}  // namespace ringtrain
