// ringtrain train --config FILE [--set k=v ...] [--run-dir DIR] [--resume DIR|auto]
//                 [--overwrite] [--print-config] [--dry-run]
#include <cstdio>

#include "collectives/mpi_communicator.h"
#include "launch/commands.h"
#include "trainer/host/stop_signals.h"
#include "trainer/trainer.h"

namespace ringtrain::cli {

namespace {

void addOptions(cxxopts::Options& options) {
  options.add_options()("c,config", "YAML config file", cxxopts::value<std::string>())(
      "run-dir", "run directory (default runs/<train.run_name>)", cxxopts::value<std::string>())(
      "resume", "resume from a checkpoint directory, or 'auto' for the newest in the run dir",
      cxxopts::value<std::string>())(
      "overwrite",
      "a fresh run into a run directory that holds an earlier run moves that run to "
      "<run-dir>.replaced-<time> (it is never deleted) instead of refusing to start")(
      "print-config", "print the resolved config (file, defaults and --set) as YAML and exit")(
      "dry-run",
      "build the model and data, print parameters, shards, steps per epoch and the "
      "checkpoint it would resume from, and exit without training or writing");
}

int run(const cxxopts::ParseResult& args, CommandContext& context) {
  auto cfg = Config::fromFile(requiredOption(args, "config"), overridesOf(args));
  if (args.count("print-config")) {
    // What the run would train with (config.yaml of its run directory), validated; nothing
    // is written. Rank 0 prints it: under mpirun, once.
    if (context.rank() == 0) std::fputs(cfg.toYaml().c_str(), stdout);
    return 0;
  }
  RunOptions options;
  if (args.count("run-dir")) options.runDir = args["run-dir"].as<std::string>();
  if (args.count("resume")) options.resume = args["resume"].as<std::string>();
  options.dryRun = args.count("dry-run") > 0;
  options.overwrite = args.count("overwrite") > 0;
  // Every rank of the job, in both modes (parameter-server mode splits it into roles).
  // barrier() gets the same deadline as every other collective (distributed.timeout_s).
  const auto timeout = cfg.distributed.timeout();
  context.comm = makeCommunicator(cfg.distributed.backend, MPI_COMM_WORLD, timeout,
                                  cfg.distributed.shared_memory);
  const TrainSummary summary = Trainer(std::move(cfg), *context.comm, options).run();
  // A signal ended the run at a checkpoint: a distinct code for a requeue (or a user's stop).
  return summary.stoppedBy.empty() ? kExitOk : stopExitCode(summary.stoppedBy);
}

}  // namespace

Command trainCommand() {
  return {"train",
          "train --config FILE [--set section.key=value ...] [--run-dir DIR] [--resume DIR|auto] "
          "[--overwrite] [--print-config] [--dry-run]",
          true, addOptions, run};
}

}  // namespace ringtrain::cli
