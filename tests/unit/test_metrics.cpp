// Straggler detection from each rank's work per step (its step time minus its sync wait),
// and the slow link of a ring from each rank's waits on its neighbours.
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

// A ring of n ranks, r sending to r + 1: waits[r] = {send peer, send wait, recv peer, recv wait}.
std::vector<LinkWaits> ring(const std::vector<std::pair<double, double>>& sendRecv) {
  const int n = static_cast<int>(sendRecv.size());
  std::vector<LinkWaits> waits;
  for (int r = 0; r < n; ++r) {
    waits.push_back({(r + 1) % n, sendRecv[r].first, (r + n - 1) % n, sendRecv[r].second});
  }
  return waits;
}

TEST(SlowLink, TheLinkWhoseSenderAndReceiverBothWait) {
  // Link 2 -> 3 is slow: rank 2 waits on its sends, and every rank waits for data, most
  // of all rank 3. Rank 3's large receive wait alone does not make 3 -> 0 slow.
  const auto link = findSlowLink(ring({{0.1, 8.0}, {0.2, 8.5}, {9.0, 7.5}, {0.1, 9.5}}));
  ASSERT_TRUE(link.has_value());
  EXPECT_EQ(link->from, 2);
  EXPECT_EQ(link->to, 3);
  EXPECT_DOUBLE_EQ(link->waitMs, 9.0);
  EXPECT_DOUBLE_EQ(link->othersMedianMs, 0.1);  // min(0.1, 8.5), min(0.2, 7.5), min(0.1, 8.0)
  EXPECT_DOUBLE_EQ(link->ratio(), 90.0);
}

TEST(SlowLink, TwoRanksHaveTwoLinks) {
  // Rank 1's link to rank 0 is slow: 1 waits to send, 0 waits to receive.
  const auto link = findSlowLink(ring({{0.5, 20.0}, {19.0, 1.0}}));
  ASSERT_TRUE(link.has_value());
  EXPECT_EQ(link->from, 1);
  EXPECT_EQ(link->to, 0);
  EXPECT_DOUBLE_EQ(link->waitMs, 19.0);
  EXPECT_DOUBLE_EQ(link->othersMedianMs, 0.5);
}

TEST(SlowLink, AnEvenRingHasRatioNearOne) {
  const auto link = findSlowLink(ring({{1.0, 1.0}, {1.0, 1.0}, {1.0, 1.0}}));
  ASSERT_TRUE(link.has_value());
  EXPECT_DOUBLE_EQ(link->ratio(), 1.0);
}

TEST(SlowLink, NoRingNoLink) {
  EXPECT_FALSE(findSlowLink({}).has_value());
  EXPECT_FALSE(findSlowLink({LinkWaits{}, LinkWaits{}}).has_value());  // no ring ran (-1 peers)
  EXPECT_FALSE(findSlowLink(ring({{1.0, 1.0}})).has_value());          // a ring of one
  // A receive wait counts only when the receiver's left peer is the sender.
  auto waits = ring({{5.0, 5.0}, {5.0, 5.0}, {5.0, 5.0}});
  waits[1].recvPeer = 2;
  const auto link = findSlowLink(waits);
  ASSERT_TRUE(link.has_value());
  EXPECT_NE(link->from, 0);
}

}  // namespace
}  // namespace ringtrain
