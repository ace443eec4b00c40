// A directory of its own for the running unit test, so tests (and concurrent runs of the
// binary) never share files: <tmp>/ringtrain-<what>-<pid>-<test name>, removed first in case
// a killed earlier run left it behind. The caller creates and removes it.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <string>

namespace ringtrain {

inline std::filesystem::path freshTestDirectory(const std::string& what) {
  const auto dir = std::filesystem::temp_directory_path() /
                   ("ringtrain-" + what + "-" + std::to_string(::getpid()) + "-" +
                    ::testing::UnitTest::GetInstance()->current_test_info()->name());
  std::filesystem::remove_all(dir);
  return dir;
}

}  // namespace ringtrain
