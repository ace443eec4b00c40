#include "launch/commands.h"

#include "core/error.h"

namespace ringtrain::cli {

const std::vector<Command>& commands() {
  static const std::vector<Command> all = {trainCommand(),   evalCommand(),   prepareTextCommand(),
                                           sampleCommand(),  reportCommand(), exportCommand(),
                                           predictCommand(), envCommand(),    timelineCommand()};
  return all;
}

std::vector<std::string> overridesOf(const cxxopts::ParseResult& args) {
  return args.count("set") ? args["set"].as<std::vector<std::string>>()
                           : std::vector<std::string>();
}

std::string requiredOption(const cxxopts::ParseResult& args, const std::string& name) {
  if (!args.count(name)) throw UsageError("missing --" + name, "see `ringtrain --help`");
  return args[name].as<std::string>();
}

}  // namespace ringtrain::cli
