// core/faults.cpp compiled as a production build compiles it (without
// -DRINGTRAIN_FAULT_INJECTION=ON): a RINGTRAIN_FAULT left in the environment is ignored with
// a warning, so it cannot slow or kill a run. (The test build's own binaries read it; the
// end-to-end fault tests show that side.)
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/faults.h"

namespace ringtrain {
namespace {

TEST(FaultGate, AProductionBuildIgnoresALeakedFaultVariable) {
  ASSERT_FALSE(faultInjectionBuilt());
  // A kill fault at every step of every rank: if it were read, this test would die here.
  ASSERT_EQ(::setenv("RINGTRAIN_FAULT", "kill:step=3,slow:ms=60000", 1), 0);
  ::testing::internal::CaptureStderr();
  const FaultInjector& faults = processFaults();
  const std::string printed = ::testing::internal::GetCapturedStderr();
  EXPECT_TRUE(faults.empty());
  EXPECT_FALSE(faults.trigger(FaultPoint::AfterStep, 0, 3));
  EXPECT_FALSE(faults.trigger(FaultPoint::StepStart, 0, 3));
  EXPECT_NE(printed.find("RINGTRAIN_FAULT is set and ignored"), std::string::npos) << printed;
  EXPECT_NE(printed.find("HINT: unset RINGTRAIN_FAULT"), std::string::npos) << printed;
}

TEST(FaultGate, TheParserStillRefusesABadSpecification) {
  // Unit tests of the test build use FaultInjector directly; it is the same code here.
  EXPECT_THROW(FaultInjector("explode:rank=0"), std::exception);
  EXPECT_FALSE(FaultInjector("nan:rank=1:step=2").empty());
}

}  // namespace
}  // namespace ringtrain
