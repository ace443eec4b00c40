// The subcommands of the `ringtrain` executable. Each lives in its own launch/cmd_*.cpp and
// is listed once in launch/commands.cpp; main() only parses, dispatches and reports errors.
#pragma once

#include <cxxopts.hpp>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "collectives/communicator.h"
#include "collectives/mpi_context.h"

namespace ringtrain::cli {

struct CommandContext {
  // Null for commands that do not use MPI.
  MpiContext* mpi = nullptr;
  // Owned by main so that an error unwinding out of a command does not destroy a
  // communicator whose thread may be blocked in MPI: main aborts the job first.
  std::unique_ptr<Communicator>& comm;
  int rank() const { return mpi ? mpi->worldRank() : 0; }
};

struct Command {
  std::string name;
  std::string synopsis;  // one line for `ringtrain --help`
  bool usesMpi = true;
  void (*addOptions)(cxxopts::Options& options) = nullptr;
  int (*run)(const cxxopts::ParseResult& args, CommandContext& context) = nullptr;
};

const std::vector<Command>& commands();

// Shared option helpers.
std::vector<std::string> overridesOf(const cxxopts::ParseResult& args);
std::string requiredOption(const cxxopts::ParseResult& args, const std::string& name);

// The command definitions, one per cmd_*.cpp.
Command trainCommand();
Command evalCommand();
Command exportCommand();
Command predictCommand();
Command prepareTextCommand();
Command sampleCommand();
Command reportCommand();
Command envCommand();
Command timelineCommand();

}  // namespace ringtrain::cli
