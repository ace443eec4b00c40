// Parameter-server layout: role assignment, the byte-balanced partition with slices, and the
// errors for splits and partitions that cannot be formed.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>

#include "core/error.h"
#include "models/registry.h"
#include "trainer/ps/layout.h"
#include "trainer/ps/protocol.h"

namespace ringtrain {
namespace {

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in: " << (haystack)

std::vector<ps::ParameterInfo> sizes(const std::vector<int64_t>& numels) {
  std::vector<ps::ParameterInfo> info;
  for (size_t i = 0; i < numels.size(); ++i) info.push_back({"p" + std::to_string(i), numels[i]});
  return info;
}

// Every element of every parameter is owned by exactly one server, through slices that tile
// each server's partition in order.
void expectExactCover(const ps::Layout& layout) {
  std::vector<std::vector<int>> owner(layout.parameters().size());
  for (size_t p = 0; p < owner.size(); ++p) {
    owner[p].assign(static_cast<size_t>(layout.parameters()[p].numel), 0);
  }
  int64_t total = 0;
  for (int s = 0; s < layout.numServers(); ++s) {
    int64_t next = 0;
    for (const auto& slice : layout.slicesOf(s)) {
      EXPECT_EQ(slice.serverOffset, next) << "server " << s;
      EXPECT_GT(slice.length, 0);
      next += slice.length;
      for (int64_t e = slice.offset; e < slice.offset + slice.length; ++e) {
        ++owner[static_cast<size_t>(slice.parameter)][static_cast<size_t>(e)];
      }
    }
    EXPECT_EQ(next, layout.partitionElements(s));
    total += next;
  }
  EXPECT_EQ(total, layout.totalElements());
  for (const auto& counts : owner) {
    for (int c : counts) ASSERT_EQ(c, 1);
  }
}

TEST(PsRoles, DefaultPlacementPutsServersLast) {
  const ps::Roles roles = ps::assignRoles(5, 2, "last");
  EXPECT_EQ(roles.servers, (std::vector<int>{3, 4}));
  EXPECT_EQ(roles.workers, (std::vector<int>{0, 1, 2}));
  EXPECT_EQ(roles.workerIndex(2), 2);
  EXPECT_EQ(roles.workerIndex(3), -1);
  EXPECT_EQ(roles.serverIndex(4), 1);
  EXPECT_TRUE(roles.isServer(3));
  EXPECT_FALSE(roles.isServer(0));
}

TEST(PsRoles, FirstAndSpreadPlacements) {
  EXPECT_EQ(ps::assignRoles(4, 1, "first").servers, (std::vector<int>{0}));
  EXPECT_EQ(ps::assignRoles(4, 1, "first").workers, (std::vector<int>{1, 2, 3}));
  // Two groups of 4 ranks (two nodes of 4): the last rank of each serves.
  EXPECT_EQ(ps::assignRoles(8, 2, "spread").servers, (std::vector<int>{3, 7}));
  EXPECT_EQ(ps::assignRoles(5, 2, "spread").servers, (std::vector<int>{1, 4}));
  EXPECT_EQ(ps::assignRoles(6, 5, "spread").servers, (std::vector<int>{1, 2, 3, 4, 5}));
  for (int world = 2; world <= 9; ++world) {
    for (int k = 1; k < world; ++k) {
      const ps::Roles roles = ps::assignRoles(world, k, "spread");
      EXPECT_EQ(roles.numServers(), k) << world << " ranks, " << k << " servers";
      EXPECT_EQ(roles.numWorkers(), world - k);
      EXPECT_EQ(roles.workers.front(), 0);
    }
  }
}

TEST(PsRoles, ImpossibleSplitsAreConfigErrors) {
  try {
    ps::assignRoles(3, 0, "last");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_CONTAINS(e.what(), "at least one server");
    EXPECT_CONTAINS(e.hint(), "ps.servers");
  }
  try {
    ps::assignRoles(3, 3, "last");
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_CONTAINS(e.what(), "no rank would be left");
    EXPECT_CONTAINS(e.hint(), "below 3");
  }
  EXPECT_THROW(ps::assignRoles(1, 1, "last"), ConfigError);
  EXPECT_THROW(ps::assignRoles(4, 1, "middle"), ConfigError);
}

TEST(PsLayout, OneServerOwnsEverythingWholeTensors) {
  const ps::Layout layout(sizes({6, 3, 10}), 1);
  ASSERT_EQ(layout.slicesOf(0).size(), 3u);
  EXPECT_EQ(layout.partitionElements(0), 19);
  EXPECT_EQ(layout.partitionBytes(0), 76);
  EXPECT_EQ(layout.slicesOf(0)[2].serverOffset, 9);
  expectExactCover(layout);
}

TEST(PsLayout, BalancedByBytesAndSplitsLargeTensors) {
  // One large layer (1000) and small ones: with 4 servers the large one must be spread.
  const ps::Layout layout(sizes({10, 1000, 5, 7}), 4);
  expectExactCover(layout);
  int64_t smallest = layout.totalElements();
  int64_t largest = 0;
  for (int s = 0; s < 4; ++s) {
    smallest = std::min(smallest, layout.partitionElements(s));
    largest = std::max(largest, layout.partitionElements(s));
  }
  EXPECT_LE(largest - smallest, 1);  // balanced to one element
  EXPECT_EQ(layout.serversOf(1), (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(layout.serversOf(0), (std::vector<int>{0}));
  EXPECT_EQ(layout.serversOf(3), (std::vector<int>{3}));
}

TEST(PsLayout, ExactCoverForManyShapesAndServerCounts) {
  const std::vector<std::vector<int64_t>> models = {{1},   {1, 1, 1},         {7, 0, 3},
                                                    {100}, {3, 97, 1, 1, 50}, {64, 64, 64, 64}};
  for (const auto& model : models) {
    const int64_t total = std::accumulate(model.begin(), model.end(), int64_t{0});
    for (int k = 1; k <= std::min<int64_t>(total, 7); ++k) {
      SCOPED_TRACE("total " + std::to_string(total) + ", servers " + std::to_string(k));
      const ps::Layout layout(sizes(model), k);
      expectExactCover(layout);
      for (int s = 0; s < k; ++s) {
        EXPECT_GE(layout.partitionElements(s), total / k);
        EXPECT_LE(layout.partitionElements(s), total / k + 1);
      }
    }
  }
}

TEST(PsLayout, PartitionsThatCannotBeFormedAreConfigErrors) {
  try {
    ps::Layout(sizes({2, 1}), 4);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_CONTAINS(e.what(), "3 parameter elements over 4 servers");
    EXPECT_CONTAINS(e.hint(), "at most 3");
  }
  EXPECT_THROW(ps::Layout(sizes({}), 1), ConfigError);
  EXPECT_THROW(ps::Layout(sizes({0, 0}), 1), ConfigError);
  EXPECT_THROW(ps::Layout(sizes({10}), 0), ConfigError);
  // A partition travels as one MPI message of at most INT_MAX bytes (~536 M floats): one
  // server cannot carry 768 M elements, a hint to add servers; two can.
  try {
    ps::Layout(sizes({int64_t{3} << 28}), 1);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_CONTAINS(e.hint(), "raise ps.servers to at least 2");
  }
  EXPECT_NO_THROW(ps::Layout(sizes({int64_t{3} << 28}), 2));
}

TEST(PsLayout, FingerprintChangesWithCutPointsAndNames) {
  const auto a = ps::Layout(sizes({10, 20}), 2).fingerprint();
  EXPECT_EQ(a, ps::Layout(sizes({10, 20}), 2).fingerprint());
  EXPECT_NE(a, ps::Layout(sizes({10, 20}), 3).fingerprint());
  EXPECT_NE(a, ps::Layout(sizes({20, 10}), 2).fingerprint());
}

TEST(PsLayout, FromARealModel) {
  auto model = makeModel("fashion_mlp");
  const auto info = ps::parameterInfo(*model);
  ASSERT_EQ(info.size(), model->parameters().size());
  EXPECT_EQ(info[0].numel, model->parameters()[0].numel());
  const ps::Layout layout(info, 3);
  expectExactCover(layout);
  EXPECT_EQ(layout.totalElements(), parameterCount(*model));
  EXPECT_CONTAINS(layout.describe(), "server 2:");
}

TEST(PsLayout, NonFloatParametersCannotBePartitioned) {
  struct Half : torch::nn::Module {
    Half() { register_parameter("w", torch::zeros({4}, torch::kFloat64)); }
  } module;
  try {
    ps::parameterInfo(module);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_CONTAINS(e.what(), "'w'");
    EXPECT_CONTAINS(e.what(), "float32");
  }
}

TEST(PsMessage, HeaderRoundTripsAndPayloadIsAView) {
  ps::Message message(5);
  message.setHeader({ps::Kind::Sync, int64_t{1} << 40, ps::kSyncCheckpoint, -3});
  const ps::Header header = message.header();
  EXPECT_EQ(header.kind, ps::Kind::Sync);
  EXPECT_EQ(header.step, int64_t{1} << 40);
  EXPECT_EQ(header.flags, ps::kSyncCheckpoint);
  EXPECT_EQ(header.value, -3);
  EXPECT_EQ(message.bytes(), 32 + 5 * 4);
  message.payload().fill_(2.5f);
  EXPECT_EQ(message.header().step, int64_t{1} << 40);  // the payload does not overlap it
  EXPECT_FLOAT_EQ(static_cast<const float*>(message.data())[ps::Message::kHeaderFloats + 4], 2.5f);
}

}  // namespace
}  // namespace ringtrain
