// The test-only fault injector: its spec parser and when a fault fires (rank, step, once=).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>

#include "core/error.h"
#include "core/faults.h"

namespace ringtrain {
namespace {

TEST(FaultInjection, EmptySpecInjectsNothing) {
  EXPECT_TRUE(FaultInjector().empty());
  EXPECT_TRUE(FaultInjector("").empty());
  EXPECT_FALSE(FaultInjector().trigger(FaultPoint::Loss, 0, 0));
}

TEST(FaultInjection, FiresOnlyOnItsRankAndStep) {
  const FaultInjector faults("nan:rank=1:step=3,model:rank=2");
  EXPECT_TRUE(faults.trigger(FaultPoint::Loss, 1, 3));
  EXPECT_FALSE(faults.trigger(FaultPoint::Loss, 0, 3));
  EXPECT_FALSE(faults.trigger(FaultPoint::Loss, 1, 4));
  EXPECT_FALSE(faults.trigger(FaultPoint::StepStart, 1, 3));  // another kind
  EXPECT_TRUE(faults.trigger(FaultPoint::BuildModel, 2, 0));
  EXPECT_FALSE(faults.trigger(FaultPoint::BuildModel, 1, 0));
  // No rank: every rank.
  EXPECT_TRUE(FaultInjector("nan:step=0").trigger(FaultPoint::Loss, 7, 0));
  // shm_full needs no step.
  const FaultInjector full("shm_full:rank=1");
  EXPECT_TRUE(full.trigger(FaultPoint::SharedMemorySpace, 1, 0));
  EXPECT_FALSE(full.trigger(FaultPoint::SharedMemorySpace, 0, 0));
}

TEST(FaultInjection, HangSleepsForItsSecondsAndAtSelectsThePoint) {
  const FaultInjector faults(
      "hang:rank=0:step=2:seconds=0,hang:rank=0:step=4:at=checkpoint:seconds=0");
  EXPECT_TRUE(faults.trigger(FaultPoint::StepStart, 0, 2));
  EXPECT_FALSE(faults.trigger(FaultPoint::BeforeCheckpointSync, 0, 2));
  EXPECT_TRUE(faults.trigger(FaultPoint::BeforeCheckpointSync, 0, 4));
}

TEST(FaultInjection, SlowFiresAtEveryStepOfItsRankAndSleeps) {
  const FaultInjector faults("slow:rank=1:ms=30");
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(faults.trigger(FaultPoint::StepStart, 1, 0));
  EXPECT_TRUE(faults.trigger(FaultPoint::StepStart, 1, 57));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(60));
  EXPECT_FALSE(faults.trigger(FaultPoint::StepStart, 0, 0));
  EXPECT_FALSE(faults.trigger(FaultPoint::BeforeCheckpointSync, 1, 0));
}

TEST(FaultInjection, OnceFileMakesAFaultFireOnlyOnce) {
  const auto marker = std::filesystem::temp_directory_path() /
                      ("ringtrain-fault-once-" + std::to_string(::getpid()));
  std::filesystem::remove(marker);
  const FaultInjector faults("nan:rank=0:step=1:once=" + marker.string());
  EXPECT_TRUE(faults.trigger(FaultPoint::Loss, 0, 1));
  EXPECT_TRUE(std::filesystem::exists(marker));
  EXPECT_FALSE(faults.trigger(FaultPoint::Loss, 0, 1));  // a restarted job runs past it
  std::filesystem::remove(marker);
}

TEST(FaultInjection, BadSpecsAreConfigErrorsNamingThePart) {
  const auto message = [](const std::string& spec) {
    try {
      FaultInjector faults(spec);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message("explode:rank=1").find("unknown fault 'explode'"), std::string::npos);
  EXPECT_NE(message("nan:rank=x:step=1").find("'x'"), std::string::npos);
  EXPECT_NE(message("nan:rank=1").find("needs step=S"), std::string::npos);
  EXPECT_NE(message("kill:step=1:at=lunch").find("bad at="), std::string::npos);
  EXPECT_NE(message("kill:step=1:colour=red").find("unknown key 'colour'"), std::string::npos);
  EXPECT_NE(message("kill:step").find("not key=value"), std::string::npos);
  EXPECT_NE(message("slow:rank=1").find("needs ms=M"), std::string::npos);
  EXPECT_NE(message("slow:ms=5:step=3").find("no step="), std::string::npos);
}

}  // namespace
}  // namespace ringtrain
