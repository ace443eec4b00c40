#include "trainer/sync/fingerprint.h"

#include <algorithm>
#include <sstream>

#include "core/error.h"
#include "trainer/checkpoint/checkpoint.h"

namespace ringtrain {

namespace {

// Lines are exchanged as fixed-size rows of characters: the collectives move tensors, and
// a fixed row needs no second round to agree on lengths.
constexpr int64_t kLineChars = 240;

uint64_t lineHash(const std::string& line) { return std::stoull(stableHash(line), nullptr, 16); }

torch::Tensor encodeLine(const std::string& line) {
  auto row = torch::zeros({kLineChars}, torch::kInt64);
  auto* out = row.data_ptr<int64_t>();
  for (size_t i = 0; i < line.size() && static_cast<int64_t>(i) < kLineChars; ++i) {
    out[i] = static_cast<unsigned char>(line[i]);
  }
  return row;
}

std::string decodeLine(const int64_t* row) {
  std::string line;
  for (int64_t i = 0; i < kLineChars && row[i] != 0; ++i) line += static_cast<char>(row[i]);
  return line;
}

}  // namespace

std::string fingerprintLine(const std::string& name, const torch::Tensor& t,
                            const std::string& where) {
  std::ostringstream line;
  line << name << ' ' << t.sizes() << ' ' << c10::toString(t.scalar_type()) << " (" << where << ')';
  return line.str();
}

std::vector<std::string> syncFingerprint(const torch::nn::Module& module,
                                         const std::vector<BucketLayout>& layout) {
  const auto parameters = module.named_parameters();
  std::vector<std::string> lines;
  for (size_t b = 0; b < layout.size(); ++b) {
    for (size_t index : layout[b].parameterIndices) {
      const auto& p = parameters[index];
      lines.push_back(fingerprintLine(p.key(), p.value(), "bucket " + std::to_string(b)));
    }
  }
  for (const auto& buffer : module.named_buffers()) {
    lines.push_back(fingerprintLine(buffer.key(), buffer.value(), "buffer"));
  }
  return lines;
}

int64_t firstDifference(const std::vector<uint64_t>& a, const std::vector<uint64_t>& b) {
  const size_t common = std::min(a.size(), b.size());
  for (size_t i = 0; i < common; ++i) {
    if (a[i] != b[i]) return static_cast<int64_t>(i);
  }
  return a.size() == b.size() ? -1 : static_cast<int64_t>(common);
}

std::optional<LineMismatch> findLineMismatch(const std::vector<std::string>& lines,
                                             const std::string& items, Communicator& comm,
                                             std::chrono::milliseconds timeout) {
  const int size = comm.size();
  std::vector<uint64_t> hashes;
  std::string all;
  for (const auto& line : lines) {
    hashes.push_back(lineHash(line));
    all += line + '\n';
  }
  // Round 1 (every check): line count and hash of everything.
  auto summary = torch::tensor(
      {static_cast<int64_t>(hashes.size()), static_cast<int64_t>(lineHash(all))}, torch::kInt64);
  auto summaries = torch::empty({2 * size}, torch::kInt64);
  comm.allgather(summary, summaries)->wait(timeout);
  const auto* s = summaries.data_ptr<int64_t>();
  int64_t maxLines = 0;
  bool same = true;
  for (int r = 0; r < size; ++r) {
    maxLines = std::max(maxLines, s[2 * r]);
    same = same && s[2 * r] == s[0] && s[2 * r + 1] == s[1];
  }
  if (same) return std::nullopt;

  // Round 2 (only on a mismatch, on every rank alike): the per-line hashes, to find the
  // first rank and line that differ.
  auto mine = torch::zeros({std::max<int64_t>(maxLines, 1)}, torch::kInt64);
  std::copy(hashes.begin(), hashes.end(), reinterpret_cast<uint64_t*>(mine.data_ptr<int64_t>()));
  auto gathered = torch::empty({size * mine.numel()}, torch::kInt64);
  comm.allgather(mine, gathered)->wait(timeout);
  const auto rowOf = [&](int r) {
    const auto* row = gathered.data_ptr<int64_t>() + r * mine.numel();
    return std::vector<uint64_t>(row, row + s[2 * r]);
  };
  const auto reference = rowOf(0);
  int badRank = -1;
  int64_t line = -1;
  for (int r = 1; r < size && badRank < 0; ++r) {
    line = firstDifference(reference, rowOf(r));
    if (line >= 0) badRank = r;
  }
  if (badRank < 0) {  // only the whole-text hash differed: a hash collision in a line
    badRank = 1;
    line = 0;
  }

  // Round 3: every rank's text of that line, so the message can show both sides.
  const std::string text =
      line < static_cast<int64_t>(lines.size())
          ? lines[static_cast<size_t>(line)]
          : "nothing (it has only " + std::to_string(lines.size()) + " " + items + ")";
  auto row = encodeLine(text);
  auto rows = torch::empty({size * kLineChars}, torch::kInt64);
  comm.allgather(row, rows)->wait(timeout);
  const auto* chars = rows.data_ptr<int64_t>();
  return LineMismatch{badRank, line, decodeLine(chars), decodeLine(chars + badRank * kLineChars)};
}

void checkFingerprintsMatch(const std::vector<std::string>& fingerprint, Communicator& comm,
                            std::chrono::milliseconds timeout, const std::string& when) {
  const auto mismatch = findLineMismatch(fingerprint, "tensors", comm, timeout);
  if (!mismatch) return;
  throw TrainingError("model fingerprint mismatch at " + when + ": rank " +
                          std::to_string(mismatch->rank) +
                          " differs from rank 0 first at synchronised tensor #" +
                          std::to_string(mismatch->line) + ": rank 0 has " + mismatch->reference +
                          ", rank " + std::to_string(mismatch->rank) + " has " + mismatch->other,
                      "every rank must build the same model from the same config and code; look "
                      "for rank-dependent model options or mixed binaries",
                      comm.rank());
}

}  // namespace ringtrain
