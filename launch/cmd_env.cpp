// ringtrain env: the environment report (trainer/report/environment.h) as YAML, for bug
// reports. Under mpirun or srun it also names the topology the job got.
#include <cstdio>

#include "collectives/mpi_communicator.h"
#include "launch/commands.h"
#include "trainer/report/environment.h"
#include "trainer/report/hosts.h"

namespace ringtrain::cli {

namespace {

void addOptions(cxxopts::Options& options) {
  options.add_options()("line", "one line (as a run's log starts) instead of YAML");
}

int run(const cxxopts::ParseResult& args, CommandContext& context) {
  constexpr std::chrono::seconds kTimeout{60};
  context.comm = makeCommunicator("mpi", MPI_COMM_WORLD, kTimeout, false);
  const auto hosts = hostOfEveryRank(*context.comm, kTimeout);
  if (context.rank() != 0) return 0;
  const EnvironmentReport report = describeEnvironment(hosts);
  const std::string text = args.count("line") ? report.oneLine() + "\n" : report.toYaml();
  std::fputs(text.c_str(), stdout);
  return 0;
}

}  // namespace

Command envCommand() {
  return {"env",
          "env [--line]: versions of ringtrain, LibTorch, MPI, NCCL, CUDA; BLAS, CPU, GPUs, "
          "launcher, topology",
          true, addOptions, run};
}

}  // namespace ringtrain::cli
