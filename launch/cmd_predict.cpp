// ringtrain predict --checkpoint DIR [--count N]: one JSON line per sample of the configured
// test set, {"index", "label", "predicted", "logits"}, for scripts and interop checks.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "core/error.h"
#include "data/dataset_registry.h"
#include "launch/commands.h"
#include "trainer/checkpoint/inference.h"

namespace ringtrain::cli {

namespace {

void addOptions(cxxopts::Options& options) {
  options.add_options()("checkpoint", "checkpoint directory, or a run directory (its newest)",
                        cxxopts::value<std::string>())(
      "count", "number of test samples, from the first",
      cxxopts::value<int64_t>()->default_value("10"));
}

int run(const cxxopts::ParseResult& args, CommandContext& /*context*/) {
  const auto warn = [](const std::string& m) { std::cerr << "warning: " << m << "\n"; };
  auto loaded = loadForInference(requiredOption(args, "checkpoint"), overridesOf(args), warn);
  auto testSet = makeDataset(loaded.config.data, Split::Test);
  const int64_t requested = args["count"].as<int64_t>();
  if (requested < 0) throw UsageError("--count must be >= 0", "e.g. --count 100");
  const int64_t count = std::min(requested, testSet->size());
  const int64_t batchSize = loaded.config.data.eval_batch_size;
  torch::NoGradGuard noGrad;
  for (int64_t start = 0; start < count; start += batchSize) {
    std::vector<int64_t> indices;
    for (int64_t i = start; i < std::min(count, start + batchSize); ++i) indices.push_back(i);
    const Batch batch = testSet->get(indices);
    const auto logits = loaded.model->forward(batch.modelInputs()).to(torch::kFloat64).contiguous();
    const auto predicted = logits.argmax(-1);
    const auto targets = batch.targets.reshape({-1});
    for (size_t i = 0; i < indices.size(); ++i) {
      const auto row = logits[static_cast<int64_t>(i)].reshape({-1});
      const auto* values = row.data_ptr<double>();
      std::string line =
          "{\"index\":" + std::to_string(indices[i]) +
          ",\"label\":" + std::to_string(targets[static_cast<int64_t>(i)].item<int64_t>()) +
          ",\"predicted\":" + std::to_string(predicted[static_cast<int64_t>(i)].item<int64_t>()) +
          ",\"logits\":[";
      for (int64_t c = 0; c < row.numel(); ++c) {
        char number[32];
        // 9 significant digits round-trip a float32 exactly.
        std::snprintf(number, sizeof number, "%s%.9g", c ? "," : "", values[c]);
        line += number;
      }
      std::cout << line << "]}\n";
    }
  }
  std::cout.flush();
  return 0;
}

}  // namespace

Command predictCommand() {
  return {"predict", "predict --checkpoint DIR [--count N] [--set section.key=value ...]", false,
          addOptions, run};
}

}  // namespace ringtrain::cli
