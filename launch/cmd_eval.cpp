// ringtrain eval --checkpoint DIR: test loss and accuracy of a checkpoint, sharded by rank.
#include <cstdio>
#include <iostream>

#include "collectives/mpi_communicator.h"
#include "data/dataset_registry.h"
#include "launch/commands.h"
#include "trainer/checkpoint/inference.h"
#include "trainer/evaluate.h"

namespace ringtrain::cli {

namespace {

void addOptions(cxxopts::Options& options) {
  options.add_options()("checkpoint", "checkpoint directory, or a run directory (its newest)",
                        cxxopts::value<std::string>());
}

int run(const cxxopts::ParseResult& args, CommandContext& context) {
  const auto warn = [&](const std::string& m) {
    if (context.rank() == 0) std::cerr << "warning: " << m << "\n";
  };
  auto loaded = loadForInference(requiredOption(args, "checkpoint"), overridesOf(args), warn);
  context.comm = makeCommunicator(loaded.config.distributed.backend, MPI_COMM_WORLD);
  auto testSet = makeDataset(loaded.config.data, Split::Test);
  const auto timeout = loaded.config.distributed.timeout();
  const auto result = evaluateModel(*loaded.model, *testSet, loaded.config.data.eval_batch_size,
                                    *context.comm, timeout, objectiveFor(loaded.config.train));
  if (context.rank() == 0) {
    std::printf("checkpoint %s: test loss %.4f", loaded.dir.c_str(), result.loss);
    if (result.hasAccuracy()) std::printf("  test accuracy %.2f%%", 100.0 * result.accuracy);
    std::printf(" (%lld samples)\n", static_cast<long long>(result.samples));
  }
  return 0;
}

}  // namespace

Command evalCommand() {
  return {"eval", "eval --checkpoint DIR [--set section.key=value ...]", true, addOptions, run};
}

}  // namespace ringtrain::cli
