// Helpers for messages about names a user wrote: a suggestion for a typo and a joined list.
// Every layer's errors use them (config keys, model options, dataset and backend names).
#pragma once

#include <string>
#include <vector>

namespace ringtrain {

// "; did you mean 'lr'?" when a candidate is close enough (by case-insensitive edit
// distance) to be a plausible typo of `name`, and "" otherwise.
std::string didYouMean(const std::string& name, const std::vector<std::string>& candidates);
std::string joinNames(const std::vector<std::string>& names, const std::string& separator = ", ");

}  // namespace ringtrain
