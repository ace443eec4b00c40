// Training your own model and dataset with ringtrain, from your own program:
//
//   mpirun -np 2 custom_model [RUN_DIR]
//
// Part 1 registers the model and dataset under names, so configs (YAML files, --set
// overrides, `ringtrain eval`) can refer to them. Part 2 skips the registries and hands the
// Trainer the objects directly. Both get the same gradient synchronisation across ranks,
// sharded data loading, checkpoints and metrics.jsonl logging as the built-in models.
#include <iostream>
#include <string>

#include "collectives/mpi_communicator.h"
#include "collectives/mpi_context.h"
#include "core/error.h"
#include "data/dataset_registry.h"
#include "models/registry.h"
#include "spirals.h"
#include "trainer/trainer.h"

// model.options is passed to the factory as a YAML map.
RINGTRAIN_REGISTER_MODEL("spiral_mlp", [](const YAML::Node& options) {
  const int64_t hidden = options["hidden"] ? options["hidden"].as<int64_t>() : 64;
  return std::make_shared<example::SpiralMlp>(hidden);
});

namespace {

const char* kConfig = R"(
model:
  name: spiral_mlp
  options: {hidden: 64}
data:
  name: spirals
  batch_size: 32        # per rank
  eval_batch_size: 500
optimizer: {name: adamw, lr: 0.01}
train: {epochs: 4, log_every: 25, seed: 7}
checkpoint: {keep_last: 1}
)";

}  // namespace

int main(int argc, char** argv) {
  ringtrain::MpiContext mpi(&argc, &argv);
  const std::string runDir = argc > 1 ? argv[1] : "runs/custom_model";
  // Declared outside the try: on an error the job is aborted (below) before the
  // communicator, whose thread may be blocked in MPI, would be destroyed.
  std::unique_ptr<ringtrain::Communicator> comm;
  try {
    // A dataset factory gets the config's data section and the split to build.
    ringtrain::registerDataset("spirals", [](const ringtrain::DataConfig&, ringtrain::Split split) {
      return std::make_shared<const example::Spirals>(
          split == ringtrain::Split::Train ? 4000 : 1000, split == ringtrain::Split::Train ? 1 : 2);
    });

    // Part 1: by name, from a config (Config::fromFile works the same way).
    auto cfg = ringtrain::Config::fromYaml(kConfig, "custom_model/main.cpp");
    comm = ringtrain::makeCommunicator(cfg.distributed.backend, MPI_COMM_WORLD);
    ringtrain::RunOptions options;
    options.runDir = runDir + "/registered";
    const auto registered = ringtrain::Trainer(cfg, *comm, options).run();

    // Part 2: your own objects, no registry involved.
    options.runDir = runDir + "/direct";
    ringtrain::Trainer direct(cfg, *comm, options, std::make_shared<example::SpiralMlp>(32),
                              std::make_shared<const example::Spirals>(4000, 1),
                              std::make_shared<const example::Spirals>(1000, 2));
    const auto summary = direct.run();

    if (mpi.worldRank() == 0) {
      std::cout << "custom_model: " << comm->size() << " ranks, registered run accuracy "
                << registered.finalEval.accuracy << ", direct run accuracy "
                << summary.finalEval.accuracy << "\n";
    }
    return registered.finalEval.accuracy >= 0.9 && summary.finalEval.accuracy >= 0.9 ? 0 : 1;
  } catch (const ringtrain::Error& e) {
    std::cerr << "custom_model: " << e.oneLine(mpi.worldRank()) << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "custom_model: " << e.what() << std::endl;
  }
  // Other ranks may wait in a collective for this one: end the whole job.
  ringtrain::MpiContext::abortJob(1);
}
