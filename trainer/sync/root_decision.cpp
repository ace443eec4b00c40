#include "trainer/sync/root_decision.h"

#include <exception>
#include <string>
#include <vector>

#include "core/error.h"

namespace ringtrain {

namespace {

// The fields of an error travel as one text: kind, exit status, message and hint, separated
// by a character no message holds.
constexpr char kSeparator = '\x1f';

std::string encode(const std::string& kind, int exitCode, const std::string& message,
                   const std::string& hint) {
  return kind + kSeparator + std::to_string(exitCode) + kSeparator + message + kSeparator + hint;
}

std::vector<std::string> fields(const std::string& text) {
  std::vector<std::string> out(1);
  for (char c : text) {
    if (c == kSeparator) {
      out.emplace_back();
    } else {
      out.back() += c;
    }
  }
  out.resize(4);
  return out;
}

}  // namespace

void decideOnRankZero(Communicator& comm, std::chrono::milliseconds timeout,
                      const std::function<void()>& decide) {
  std::exception_ptr failure;
  std::string text;
  if (comm.rank() == 0) {
    try {
      decide();
    } catch (const Error& e) {
      failure = std::current_exception();
      text = encode(e.kind(), e.exitCode(), e.what(), e.hint());
    } catch (const std::exception& e) {
      failure = std::current_exception();
      text = encode("internal", kExitInternal, e.what(), "");
    }
  }
  if (comm.size() > 1) {
    // The length first, then the characters (one int64 each: every backend moves those).
    auto length = torch::tensor({static_cast<int64_t>(text.size())}, torch::kInt64);
    comm.broadcast(length, 0)->wait(timeout);
    const int64_t n = length.item<int64_t>();
    if (n > 0) {
      auto chars = torch::zeros({n}, torch::kInt64);
      auto* out = chars.data_ptr<int64_t>();
      for (size_t i = 0; i < text.size(); ++i) out[i] = static_cast<unsigned char>(text[i]);
      comm.broadcast(chars, 0)->wait(timeout);
      if (comm.rank() != 0) {
        for (int64_t i = 0; i < n; ++i) text += static_cast<char>(out[i]);
      }
    }
  }
  if (failure) std::rethrow_exception(failure);
  if (text.empty()) return;
  const auto f = fields(text);
  int exitCode = kExitInternal;
  try {
    exitCode = std::stoi(f[1]);
  } catch (const std::exception&) {
  }
  throw RelayedError(f[0], exitCode, f[2], f[3], comm.rank());
}

}  // namespace ringtrain
