// ringtrain command line: parse -> Config -> communicator -> Trainer(cfg).run().
// Only this file exits the process; library code throws ringtrain::Error.
#include <cstdio>
#include <iostream>
#include <optional>

#include "core/error.h"
#include "core/exit_codes.h"
#include "launch/commands.h"
#include "trainer/host/blas_kernels.h"

namespace {

using ringtrain::cli::Command;

void printUsage(std::ostream& out) {
  out << "usage: ringtrain <command> [options]\n\ncommands:\n";
  for (const auto& c : ringtrain::cli::commands()) out << "  " << c.synopsis << "\n";
  out << "\nRun under MPI for data-parallel training: mpirun -np N ringtrain train --config FILE\n"
         "`ringtrain <command> --help` lists a command's options; --version prints the "
         "version.\n";
}

const Command* findCommand(const std::string& name) {
  for (const auto& c : ringtrain::cli::commands()) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

// The first line of an exception's text: LibTorch appends multi-line stack traces.
std::string firstLine(const std::string& text) { return text.substr(0, text.find('\n')); }

// One write(2) per line: ranks share the terminal, and a line written in pieces gets
// interleaved with the other ranks' lines.
void printErrorLine(const std::string& text) {
  const std::string line = text + "\n";
  std::fflush(stdout);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace

int main(int argc, char** argv) {
  // First, while the process is still one thread and MPI is not up (see blas_kernels.h).
  ringtrain::reexecWithBetterBlasKernels(argv);
  const std::string name = argc > 1 ? argv[1] : "";
  if (name.empty() || name == "-h" || name == "--help" || name == "help") {
    printUsage(std::cout);
    return name.empty() ? ringtrain::kExitUsage : ringtrain::kExitOk;
  }
  if (name == "--version" || name == "version") {
    std::cout << "ringtrain " << RINGTRAIN_VERSION << "\n";
    return 0;
  }
  const Command* command = findCommand(name);
  if (!command) {
    std::cerr << "ringtrain: unknown command '" << name << "'\n";
    printUsage(std::cerr);
    return ringtrain::kExitUsage;
  }

  int rank = -1;
  int worldSize = 1;
  std::optional<ringtrain::MpiContext> mpi;
  std::unique_ptr<ringtrain::Communicator> comm;
  int status = ringtrain::kExitInternal;
  try {
    if (command->usesMpi) {
      mpi.emplace(&argc, &argv);
      rank = mpi->worldRank();
      worldSize = mpi->worldSize();
    }
    if (const std::string note = ringtrain::blasRestartNote(); !note.empty() && rank <= 0) {
      printErrorLine(note);
    }
    cxxopts::Options options("ringtrain " + command->name);
    options.add_options()("h,help", "show this help")(
        "set", "override a config key: section.key=value (repeatable)",
        cxxopts::value<std::vector<std::string>>());
    command->addOptions(options);
    const auto args = options.parse(argc - 1, argv + 1);
    if (args.count("help")) {
      if (rank <= 0) std::cout << options.help();
      return 0;
    }
    ringtrain::cli::CommandContext context{mpi ? &*mpi : nullptr, comm};
    return command->run(args, context);
  } catch (const ringtrain::Error& e) {
    printErrorLine("ringtrain: " + e.oneLine(rank));
    status = e.exitCode();
  } catch (const cxxopts::exceptions::exception& e) {
    printErrorLine("ringtrain: " + std::string(e.what()) + " (see `ringtrain " + name +
                   " --help`)");
    status = ringtrain::kExitUsage;
  } catch (const std::exception& e) {
    printErrorLine("ringtrain: [rank " + std::to_string(rank) +
                   "] internal error: " + firstLine(e.what()));
  }
  // Other ranks may be blocked in a collective waiting for this one: take the job down
  // (mpirun then exits with this rank's status).
  if (worldSize > 1) ringtrain::MpiContext::abortJob(status);
  return status;
}
