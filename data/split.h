// Which part of a dataset to load: the training set or the held-out test set.
#pragma once

namespace ringtrain {

enum class Split { Train, Test };

inline const char* splitName(Split split) { return split == Split::Train ? "train" : "test"; }

}  // namespace ringtrain
