// ringtrain export --checkpoint DIR --format safetensors|torch --out FILE: the weights of a
// checkpoint (or a run directory's newest valid one) for other frameworks.
#include <iostream>

#include "core/error.h"
#include "launch/commands.h"
#include "trainer/checkpoint/checkpoint.h"
#include "trainer/checkpoint/export.h"
#include "trainer/checkpoint/inference.h"

namespace ringtrain::cli {

namespace {

void addOptions(cxxopts::Options& options) {
  options.add_options()("checkpoint", "checkpoint directory, or a run directory (its newest)",
                        cxxopts::value<std::string>())(
      "format", "safetensors or torch",
      cxxopts::value<std::string>()->default_value("safetensors"))("out", "output file",
                                                                   cxxopts::value<std::string>());
}

int run(const cxxopts::ParseResult& args, CommandContext& /*context*/) {
  const auto format = args["format"].as<std::string>();
  if (format != "safetensors" && format != "torch") {
    throw UsageError("unknown export format '" + format + "'", "use --format safetensors or torch");
  }
  const auto out = requiredOption(args, "out");
  const auto warn = [](const std::string& m) { std::cerr << "warning: " << m << "\n"; };
  const auto loaded = loadForInference(requiredOption(args, "checkpoint"), overridesOf(args), warn);
  const auto tensors = stateDictOf(*loaded.model);
  if (format == "safetensors") {
    const auto state = readTrainingState(loaded.dir);
    writeSafetensors(out, tensors,
                     {{"format", "pt"},
                      {"producer", "ringtrain " RINGTRAIN_VERSION},
                      {"model", loaded.config.model.name},
                      {"step", std::to_string(state.step)},
                      {"config", loaded.config.toYaml()}});
  } else {
    writeTorchStateDict(out, tensors);
  }
  std::cout << "exported " << tensors.size() << " tensors of " << loaded.dir << " to " << out
            << " (" << format << ")\n";
  return 0;
}

}  // namespace

Command exportCommand() {
  return {
      "export",
      "export --checkpoint DIR --format safetensors|torch --out FILE [--set section.key=value ...]",
      false, addOptions, run};
}

}  // namespace ringtrain::cli
