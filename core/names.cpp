#include "core/names.h"

#include <algorithm>
#include <cctype>
#include <optional>

namespace ringtrain {
namespace {

std::string lowercase(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return s;
}

size_t editDistance(const std::string& a, const std::string& b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

// The closest candidate, case-insensitively, if it is close enough to be a plausible typo
// (suggesting 'lr' for 'learning_rate', or for 'x', would mislead more than it helps).
std::optional<std::string> closest(const std::string& name,
                                   const std::vector<std::string>& candidates) {
  std::optional<std::string> best;
  size_t bestDistance = std::max<size_t>(2, name.size() / 2) + 1;
  for (const std::string& c : candidates) {
    const size_t d = editDistance(lowercase(name), lowercase(c));
    if (d < bestDistance && d < std::max(name.size(), c.size())) {
      bestDistance = d;
      best = c;
    }
  }
  return best;
}

}  // namespace

std::string joinNames(const std::vector<std::string>& items, const std::string& separator) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : separator) + item;
  return out;
}

std::string didYouMean(const std::string& name, const std::vector<std::string>& candidates) {
  const auto best = closest(name, candidates);
  return best ? "; did you mean '" + *best + "'?" : std::string();
}

}  // namespace ringtrain
