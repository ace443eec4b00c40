// ringtrain prepare-text --in FILE... --out DIR [--shards N] [--val-fraction F]: byte-level
// token shards for language models (see data/text_prep.h).
#include <unistd.h>

#include <cstdio>
#include <string>
#include <vector>

#include "core/error.h"
#include "data/text_prep.h"
#include "launch/commands.h"

namespace ringtrain::cli {

namespace {

void addOptions(cxxopts::Options& options) {
  options.add_options()("in", "input text files (--in a b c, or repeated)",
                        cxxopts::value<std::vector<std::string>>())(
      "out", "output directory for the shards and meta.yaml", cxxopts::value<std::string>())(
      "shards", "number of training shard files", cxxopts::value<int64_t>()->default_value("1"))(
      "val-fraction", "fraction of every file kept for validation (its tail)",
      cxxopts::value<double>()->default_value("0.1"));
  // Words after --in that are not options are more input files.
  options.parse_positional({"in"});
}

// A progress bar on a terminal; otherwise a line every 10% for inputs of 16 MB or more.
class ProgressBar {
 public:
  ProgressBar() : interactive_(isatty(fileno(stderr)) != 0) {}
  ~ProgressBar() {
    if (drawn_) std::fputc('\n', stderr);
  }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;

  void update(int64_t done, int64_t total) {
    const int percent = total > 0 ? static_cast<int>(100 * done / total) : 100;
    if (interactive_) {
      if (percent == lastPercent_) return;
      constexpr int kWidth = 40;
      const int filled = percent * kWidth / 100;
      std::fprintf(stderr, "\r[%s%s] %3d%%  %.1f / %.1f MB", std::string(filled, '#').c_str(),
                   std::string(kWidth - filled, '.').c_str(), percent, done / 1e6, total / 1e6);
      drawn_ = true;
    } else if (total >= (16 << 20) && percent / 10 != lastPercent_ / 10) {
      std::fprintf(stderr, "prepare-text: %d%% (%.1f / %.1f MB)\n", percent, done / 1e6,
                   total / 1e6);
    }
    std::fflush(stderr);
    lastPercent_ = percent;
  }

 private:
  bool interactive_;
  bool drawn_ = false;
  int lastPercent_ = -1;
};

int run(const cxxopts::ParseResult& args, CommandContext&) {
  TextPrepOptions options;
  if (!args.count("in")) throw UsageError("missing --in", "pass one or more input text files");
  options.inputs = args["in"].as<std::vector<std::string>>();
  options.outDir = requiredOption(args, "out");
  options.shards = args["shards"].as<int64_t>();
  options.valFraction = args["val-fraction"].as<double>();
  TextPrepResult result;
  {
    ProgressBar bar;
    options.progress = [&bar](int64_t done, int64_t total) { bar.update(done, total); };
    result = prepareText(options);
  }
  std::printf(
      "prepare-text: %zu file(s) -> %s\n  train: %lld tokens in %zu shard(s)\n"
      "  val:   %lld tokens\n  vocab_size 256 (bytes); unigram baseline %.4f nats/byte "
      "(a model must get its validation loss below this)\n",
      options.inputs.size(), options.outDir.c_str(), static_cast<long long>(result.trainTokens),
      result.trainFiles.size(), static_cast<long long>(result.valTokens), result.unigramEntropy);
  return 0;
}

}  // namespace

Command prepareTextCommand() {
  return {"prepare-text", "prepare-text --in FILE... --out DIR [--shards N] [--val-fraction F]",
          false, addOptions, run};
}

}  // namespace ringtrain::cli
