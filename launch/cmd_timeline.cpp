// ringtrain timeline RUN_DIR [-o FILE] [--html FILE]: merges the per-rank Chrome traces of a
// run with train.timeline into one (a track group per rank) for chrome://tracing or Perfetto,
// and optionally draws it as an HTML page.
#include <cstdio>
#include <filesystem>
#include <string>
#include <vector>

#include "core/error.h"
#include "launch/commands.h"
#include "trainer/report/timeline.h"

namespace ringtrain::cli {

namespace {

void addOptions(cxxopts::Options& options) {
  options.add_options()("o,output", "the merged trace (default RUN_DIR/timeline.json)",
                        cxxopts::value<std::string>())(
      "html", "also draw the trace into this HTML page", cxxopts::value<std::string>())(
      "run", "the run directory", cxxopts::value<std::string>());
  options.parse_positional({"run"});
  options.positional_help("RUN_DIR");
}

int run(const cxxopts::ParseResult& args, CommandContext&) {
  if (!args.count("run")) {
    throw UsageError("timeline: no run directory given",
                     "usage: ringtrain timeline runs/NAME [-o trace.json] [--html trace.html]");
  }
  const auto runDir = args["run"].as<std::string>();
  const std::string output = args.count("output")
                                 ? args["output"].as<std::string>()
                                 : (std::filesystem::path(runDir) / "timeline.json").string();
  const std::string html = args.count("html") ? args["html"].as<std::string>() : "";
  const MergedTimeline merged = mergeTimelines(runDir, output, html);
  std::printf(
      "timeline: %d rank(s), %lld events -> %s%s (open it in https://ui.perfetto.dev or "
      "chrome://tracing)\n",
      merged.ranks, static_cast<long long>(merged.events), output.c_str(),
      html.empty() ? "" : (", drawn in " + html).c_str());
  return 0;
}

}  // namespace

Command timelineCommand() {
  return {"timeline", "timeline RUN_DIR [-o trace.json] [--html page.html]", false, addOptions,
          run};
}

}  // namespace ringtrain::cli
