// ringtrain report RUN_DIR... -o report.html: one self-contained HTML page comparing runs.
#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "launch/commands.h"
#include "trainer/report/report.h"

namespace ringtrain::cli {

namespace {

void addOptions(cxxopts::Options& options) {
  options.add_options()("o,output", "the HTML file to write",
                        cxxopts::value<std::string>()->default_value("report.html"))(
      "runs", "run directories", cxxopts::value<std::vector<std::string>>());
  options.parse_positional({"runs"});
  options.positional_help("RUN_DIR...");
}

int run(const cxxopts::ParseResult& args, CommandContext&) {
  if (!args.count("runs")) {
    throw UsageError("report: no run directories given",
                     "usage: ringtrain report runs/a runs/b -o report.html");
  }
  const auto runs = args["runs"].as<std::vector<std::string>>();
  const auto output = args["output"].as<std::string>();
  writeReport(runs, output);
  std::printf("report: %zu run(s) -> %s\n", runs.size(), output.c_str());
  return 0;
}

}  // namespace

Command reportCommand() {
  return {"report", "report RUN_DIR... [-o report.html]", false, addOptions, run};
}

}  // namespace ringtrain::cli
