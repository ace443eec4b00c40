// Straggler detection from each rank's work per step (its step time minus its sync wait).
#include <gtest/gtest.h>

#include "core/error.h"
#include "trainer/report/metrics.h"

namespace ringtrain {
namespace {

TEST(Straggler, TwoRanksCompareTheSlowerWithTheOther) {
  const Straggler s = findStraggler({20.0, 30.0});
  EXPECT_EQ(s.rank, 1);
  EXPECT_DOUBLE_EQ(s.workMs, 30.0);
  EXPECT_DOUBLE_EQ(s.othersMedianMs, 20.0);
  EXPECT_DOUBLE_EQ(s.leadMs(), 10.0);
  EXPECT_DOUBLE_EQ(s.ratio(), 1.5);
}

TEST(Straggler, ManyRanksCompareWithTheMedianOfTheOthers) {
  // Odd number of others: the middle one. One fast rank does not move the median.
  const Straggler odd = findStraggler({10.0, 40.0, 11.0, 1.0});
  EXPECT_EQ(odd.rank, 1);
  EXPECT_DOUBLE_EQ(odd.othersMedianMs, 10.0);
  EXPECT_DOUBLE_EQ(odd.ratio(), 4.0);
  // Even number of others: the mean of the middle two.
  const Straggler even = findStraggler({12.0, 10.0, 14.0, 16.0, 30.0});
  EXPECT_EQ(even.rank, 4);
  EXPECT_DOUBLE_EQ(even.othersMedianMs, 13.0);
  EXPECT_DOUBLE_EQ(even.leadMs(), 17.0);
}

TEST(Straggler, ATieGoesToTheLowestRankWithRatioOne) {
  const Straggler s = findStraggler({5.0, 7.0, 7.0, 7.0});
  EXPECT_EQ(s.rank, 1);
  EXPECT_DOUBLE_EQ(s.ratio(), 1.0);
  EXPECT_DOUBLE_EQ(s.leadMs(), 0.0);
  EXPECT_DOUBLE_EQ(findStraggler({0.0, 0.0}).ratio(), 1.0);  // no work at all: no straggler
}

TEST(Straggler, NeedsTwoRanks) { EXPECT_THROW(findStraggler({3.0}), Error); }

}  // namespace
}  // namespace ringtrain
