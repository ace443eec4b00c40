// Config: defaults, a full file, every kind of error message, --set overrides, the
// toYaml() round trip and the model.options pass-through.
#include "core/error.h"
#include "trainer/config/config.h"
#include "trainer/config/config_schema.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>

namespace ringtrain {
namespace {

namespace fs = std::filesystem;

// Parses and expects a ConfigError; returns it so the test can check message and hint.
ConfigError parseError(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  try {
    Config::fromYaml(yaml, "configs/x.yaml", overrides);
  } catch (const ConfigError& e) {
    return e;
  }
  ADD_FAILURE() << "expected a ConfigError for:\n" << yaml;
  return ConfigError("no error");
}

std::string message(const std::string& yaml, const std::vector<std::string>& overrides = {}) {
  return parseError(yaml, overrides).what();
}

#define EXPECT_CONTAINS(haystack, needle) \
  EXPECT_NE(std::string(haystack).find(needle), std::string::npos) << "in: " << (haystack)
#define EXPECT_NOT_CONTAINS(haystack, needle) \
  EXPECT_EQ(std::string(haystack).find(needle), std::string::npos) << "in: " << (haystack)

// Compares every schema key, so a key added later is covered without touching the test.
void expectSameConfig(const Config& a, const Config& b) {
  for (const ConfigKey& key : configSchema()) {
    const ConfigValue va = key.read(a);
    const ConfigValue vb = key.read(b);
    ASSERT_EQ(va.index(), vb.index()) << key.path();
    if (const auto* node = std::get_if<YAML::Node>(&va)) {
      EXPECT_EQ(YAML::Dump(*node), YAML::Dump(std::get<YAML::Node>(vb))) << key.path();
    } else if (const auto* d = std::get_if<double>(&va)) {
      // Bitwise: the round trip must not lose a single ulp.
      EXPECT_EQ(std::memcmp(d, &std::get<double>(vb), sizeof(double)), 0)
          << key.path() << ": " << *d << " vs " << std::get<double>(vb);
    } else {
      EXPECT_TRUE(va == vb) << key.path();
    }
  }
}

// A file in the gtest temp dir, removed at the end of the test.
class TempFile {
 public:
  TempFile(const std::string& name, const std::string& text)
      : path_(fs::path(::testing::TempDir()) / name) {
    std::ofstream(path_) << text;
  }
  ~TempFile() {
    std::error_code ec;
    fs::remove(path_, ec);
  }
  std::string path() const { return path_.string(); }

 private:
  fs::path path_;
};

const char* kFullFile = R"(# every section, every value different from its default
model:
  name: mlp
  options:
    hidden: [256, 128]
    dropout: 0.25
data:
  name: synthetic
  dir: /tmp/data
  batch_size: 32
  eval_batch_size: 500
  prefetch: 2
  mean: 0.5
  std: 0.25
  shuffle: false
  label_column: y
  target_type: float
optimizer:
  name: adamw
  lr: 0.001
  momentum: 0.8
  nesterov: true
  weight_decay: 0.01
  beta1: 0.85
  beta2: 0.99
  eps: 1.0e-6
schedule:
  name: cosine
  warmup_steps: 100
  step_size: 500
  gamma: 0.5
  min_lr: 1e-5
train:
  run_name: full
  epochs: 7
  max_steps: 1000
  seed: 18446744073709551615
  log_every: 10
  grad_clip_norm: 1.5
  threads: 2
  check_replicas_every: 25
  retain_host_memory: false
  grad_accumulation: 4
  on_nonfinite: skip
  precision: bf16
  straggler_ratio: 2.5
  loss: mse
  metric: loss
distributed:
  backend: mpi
  mode: ps
  bucket_mb: 0.5
  overlap: false
  shared_memory: false
  compression: fp16
  timeout_s: 30
checkpoint:
  every_steps: 200
  keep_last: 1
  enabled: false
metrics:
  tensorboard: true
  prometheus_port: 9464
  prometheus_address: 0.0.0.0
  prometheus_textfile: /tmp/ringtrain.prom
)";

TEST(Config, EmptyTextGivesTheStructDefaults) {
  const Config parsed = Config::fromYaml("", "empty.yaml");
  const Config defaults;
  for (const ConfigKey& key : configSchema()) {
    if (key.type == ConfigType::Map) continue;  // options: Null in the struct, {} once parsed
    EXPECT_TRUE(key.read(parsed) == key.read(defaults)) << key.path();
  }
  EXPECT_EQ(parsed.model.name, "fashion_cnn");
  EXPECT_EQ(parsed.data.batch_size, 64);
  EXPECT_DOUBLE_EQ(parsed.optimizer.lr, 0.05);
  EXPECT_EQ(parsed.train.seed, 42u);
  EXPECT_EQ(parsed.distributed.backend, "ring");
  EXPECT_TRUE(parsed.distributed.overlap);
  EXPECT_EQ(parsed.train.run_name, "");  // fromYaml has no file stem to fall back to
  EXPECT_TRUE(parsed.model.options.IsMap());
  EXPECT_EQ(parsed.model.options.size(), 0u);
}

TEST(Config, EmptySectionsAndCommentsKeepDefaults) {
  const Config c = Config::fromYaml("# nothing set\noptimizer:\ntrain:\n", "x.yaml");
  EXPECT_DOUBLE_EQ(c.optimizer.lr, 0.05);
  EXPECT_EQ(c.train.epochs, 3);
}

TEST(Config, SchemaCoversSectionsInOrder) {
  const std::vector<std::string> all = {"model",       "data", "optimizer",  "schedule", "train",
                                        "distributed", "ps",   "checkpoint", "metrics"};
  EXPECT_EQ(configSections(), all);
  EXPECT_EQ(configSchema().size(), 64u);  // update when a key is added
  ASSERT_NE(findConfigKey("optimizer", "lr"), nullptr);
  EXPECT_EQ(findConfigKey("optimizer", "lrr"), nullptr);
}

TEST(Config, FullFileSetsEveryField) {
  const Config c = Config::fromYaml(kFullFile, "full.yaml");
  EXPECT_EQ(c.model.name, "mlp");
  EXPECT_EQ(c.data.name, "synthetic");
  EXPECT_EQ(c.data.dir, "/tmp/data");
  EXPECT_EQ(c.data.batch_size, 32);
  EXPECT_EQ(c.data.eval_batch_size, 500);
  EXPECT_EQ(c.data.prefetch, 2);
  EXPECT_DOUBLE_EQ(c.data.mean, 0.5);
  EXPECT_DOUBLE_EQ(c.data.std, 0.25);
  EXPECT_FALSE(c.data.shuffle);
  EXPECT_EQ(c.optimizer.name, "adamw");
  EXPECT_DOUBLE_EQ(c.optimizer.lr, 0.001);
  EXPECT_DOUBLE_EQ(c.optimizer.momentum, 0.8);
  EXPECT_TRUE(c.optimizer.nesterov);
  EXPECT_DOUBLE_EQ(c.optimizer.weight_decay, 0.01);
  EXPECT_DOUBLE_EQ(c.optimizer.beta1, 0.85);
  EXPECT_DOUBLE_EQ(c.optimizer.beta2, 0.99);
  EXPECT_DOUBLE_EQ(c.optimizer.eps, 1e-6);
  EXPECT_EQ(c.schedule.name, "cosine");
  EXPECT_EQ(c.schedule.warmup_steps, 100);
  EXPECT_EQ(c.schedule.step_size, 500);
  EXPECT_DOUBLE_EQ(c.schedule.gamma, 0.5);
  EXPECT_DOUBLE_EQ(c.schedule.min_lr, 1e-5);
  EXPECT_EQ(c.train.run_name, "full");
  EXPECT_EQ(c.train.epochs, 7);
  EXPECT_EQ(c.train.max_steps, 1000);
  EXPECT_EQ(c.train.seed, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(c.train.log_every, 10);
  EXPECT_DOUBLE_EQ(c.train.grad_clip_norm, 1.5);
  EXPECT_EQ(c.train.threads, 2);
  EXPECT_EQ(c.train.check_replicas_every, 25);
  EXPECT_FALSE(c.train.retain_host_memory);
  EXPECT_EQ(c.train.grad_accumulation, 4);
  EXPECT_EQ(c.train.on_nonfinite, "skip");
  EXPECT_EQ(c.train.precision, "bf16");
  EXPECT_DOUBLE_EQ(c.train.straggler_ratio, 2.5);
  EXPECT_EQ(c.train.loss, "mse");
  EXPECT_EQ(c.train.metric, "loss");
  EXPECT_EQ(c.data.label_column, "y");
  EXPECT_EQ(c.data.target_type, "float");
  EXPECT_EQ(c.distributed.backend, "mpi");
  EXPECT_EQ(c.distributed.mode, "ps");
  EXPECT_DOUBLE_EQ(c.distributed.bucket_mb, 0.5);
  EXPECT_FALSE(c.distributed.overlap);
  EXPECT_FALSE(c.distributed.shared_memory);
  EXPECT_EQ(c.distributed.compression, "fp16");
  EXPECT_DOUBLE_EQ(c.distributed.timeout_s, 30.0);
  EXPECT_EQ(c.checkpoint.every_steps, 200);
  EXPECT_EQ(c.checkpoint.keep_last, 1);
  EXPECT_FALSE(c.checkpoint.enabled);
  EXPECT_TRUE(c.metrics.tensorboard);
  EXPECT_EQ(c.metrics.prometheus_port, 9464);
  EXPECT_EQ(c.metrics.prometheus_address, "0.0.0.0");
  EXPECT_EQ(c.metrics.prometheus_textfile, "/tmp/ringtrain.prom");
}

TEST(Config, IntegersAcceptExactlyIntegralNumbers) {
  const Config c = Config::fromYaml("train:\n  max_steps: 1e4\n  epochs: +5\n", "x.yaml");
  EXPECT_EQ(c.train.max_steps, 10000);
  EXPECT_EQ(c.train.epochs, 5);
  // Leading zeros are decimal, not octal.
  EXPECT_EQ(Config::fromYaml("data:\n  batch_size: 010\n", "x.yaml").data.batch_size, 10);
}

TEST(Config, UnknownKeySuggestsTheClosest) {
  const ConfigError e = parseError("optimizer:\n  lr: 0.1\n  lrr: 0.2\n");
  EXPECT_CONTAINS(e.what(), "unknown key 'lrr' in section 'optimizer' of configs/x.yaml");
  EXPECT_CONTAINS(e.what(), "line 3");
  EXPECT_CONTAINS(e.what(), "did you mean 'lr'?");
  EXPECT_CONTAINS(e.hint(), "momentum");  // the hint lists the section's keys
  EXPECT_STREQ(e.kind(), "config");

  EXPECT_CONTAINS(message("data:\n  batchsize: 8\n"), "did you mean 'batch_size'?");
  // Nothing close: no misleading suggestion.
  EXPECT_NOT_CONTAINS(message("optimizer:\n  learning_rate_x: 1\n"), "did you mean");
  EXPECT_NOT_CONTAINS(message("optimizer:\n  x: 1\n"), "did you mean");
}

TEST(Config, KeyInTheWrongSectionNamesItsSection) {
  const std::string m = message("optimizer:\n  epochs: 3\n");
  EXPECT_CONTAINS(m, "unknown key 'epochs' in section 'optimizer'");
  EXPECT_CONTAINS(m, "'epochs' belongs in section 'train'");
  EXPECT_NOT_CONTAINS(m, "did you mean");
}

TEST(Config, UnknownSection) {
  const ConfigError e = parseError("optimiser:\n  lr: 0.1\n");
  EXPECT_CONTAINS(e.what(), "unknown section 'optimiser' in configs/x.yaml (line 1, column 1)");
  EXPECT_CONTAINS(e.what(), "did you mean 'optimizer'?");
  EXPECT_CONTAINS(e.hint(), "checkpoint");
  // A key written at the top level.
  EXPECT_CONTAINS(message("lr: 0.1\n"), "'lr' is a key of section 'optimizer'");
}

TEST(Config, WrongTypeNamesKeyTypeAndValue) {
  const ConfigError e = parseError("optimizer:\n  lr: fast\n");
  EXPECT_CONTAINS(e.what(), "optimizer.lr must be a number, got 'fast'");
  EXPECT_CONTAINS(e.what(), "configs/x.yaml (line 2, column 7)");
  EXPECT_CONTAINS(e.hint(), "lr: 0.05");
  EXPECT_CONTAINS(message("data:\n  batch_size: 64.5\n"),
                  "data.batch_size must be an integer, got '64.5'");
  EXPECT_CONTAINS(message("distributed:\n  overlap: maybe\n"),
                  "distributed.overlap must be a boolean (true or false), got 'maybe'");
  EXPECT_CONTAINS(message("train:\n  seed: -1\n"),
                  "train.seed must be a non-negative integer, got '-1'");
  EXPECT_CONTAINS(message("optimizer:\n  lr: [0.1]\n"),
                  "optimizer.lr must be a number, got a list");
  EXPECT_CONTAINS(message("optimizer:\n  lr:\n"), "got an empty value");
  EXPECT_CONTAINS(message("optimizer:\n  lr: nan\n"), "must be a finite number");
  EXPECT_CONTAINS(message("train:\n  epochs: 99999999999999999999\n"), "must be an integer");
  EXPECT_CONTAINS(message("model:\n  options: 3\n"), "model.options must be a map");
  EXPECT_CONTAINS(message("optimizer: 0.1\n"), "section 'optimizer' must be a map");
  EXPECT_CONTAINS(message("- optimizer\n"), "top level of configs/x.yaml");
}

TEST(Config, BadEnumListsAllowedValues) {
  const ConfigError e = parseError("optimizer:\n  name: adamww\n");
  EXPECT_CONTAINS(e.what(), "optimizer.name must be one of sgd, adam, adamw, got 'adamww'");
  EXPECT_CONTAINS(e.what(), "did you mean 'adamw'?");
  EXPECT_CONTAINS(message("distributed:\n  backend: gloo\n"), "one of ring, mpi, nccl");
  EXPECT_CONTAINS(message("distributed:\n  mode: async\n"), "one of allreduce, ps");
  EXPECT_CONTAINS(message("distributed:\n  compression: int8\n"), "one of none, bf16, fp16");
  EXPECT_CONTAINS(message("schedule:\n  name: linear\n"), "one of constant, step, cosine");
  EXPECT_CONTAINS(message("train:\n  on_nonfinite: ignore\n"), "one of abort, skip");
  EXPECT_CONTAINS(message("train:\n  precision: fp16\n"), "one of fp32, bf16");
}

TEST(Config, OutOfRangeNamesKeyAndBound) {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  const Case cases[] = {
      {"data:\n  batch_size: 0\n", "data.batch_size must be >= 1, got 0"},
      {"data:\n  eval_batch_size: -3\n", "data.eval_batch_size must be >= 1, got -3"},
      {"data:\n  prefetch: 0\n", "data.prefetch must be >= 1"},
      {"data:\n  std: 0\n", "data.std must be > 0"},
      {"optimizer:\n  lr: 0\n", "optimizer.lr must be > 0, got 0"},
      {"optimizer:\n  lr: -0.1\n", "optimizer.lr must be > 0, got -0.1"},
      {"optimizer:\n  beta2: 1\n", "optimizer.beta2 must be < 1"},
      {"train:\n  epochs: 0\n", "train.epochs must be >= 1"},
      {"train:\n  max_steps: -1\n", "train.max_steps must be >= 0"},
      {"train:\n  log_every: 0\n", "train.log_every must be >= 1"},
      {"train:\n  grad_accumulation: 0\n", "train.grad_accumulation must be >= 1"},
      {"distributed:\n  bucket_mb: 0\n", "distributed.bucket_mb must be > 0"},
      {"distributed:\n  timeout_s: -5\n", "distributed.timeout_s must be > 0"},
      {"checkpoint:\n  keep_last: 0\n", "checkpoint.keep_last must be >= 1"},
  };
  for (const Case& c : cases) EXPECT_CONTAINS(message(c.yaml), c.expected);
  // The inclusive bounds themselves are accepted.
  EXPECT_EQ(Config::fromYaml("train:\n  max_steps: 0\n  epochs: 1\n", "x").train.epochs, 1);
}

TEST(Config, DuplicateKeyIsAnError) {
  const std::string m = message("optimizer:\n  lr: 0.1\n  lr: 0.2\n");
  EXPECT_CONTAINS(m, "duplicate key 'lr' in section 'optimizer'");
  EXPECT_CONTAINS(m, "line 3");
  EXPECT_CONTAINS(message("train:\n  epochs: 1\ntrain:\n  seed: 1\n"), "duplicate key 'train'");
}

TEST(Config, YamlSyntaxErrorHasFileLineAndColumn) {
  const ConfigError e = parseError("optimizer:\n  lr: 0.1\n momentum: 0.9\n");
  EXPECT_CONTAINS(e.what(), "YAML syntax error in configs/x.yaml at line 3, column 2");
  EXPECT_CONTAINS(e.hint(), "indentation");
  EXPECT_CONTAINS(message("a: 1\n---\nb: 2\n"), "2 YAML documents");
}

TEST(Config, OverridesWinOverTheFile) {
  const std::string file = "optimizer:\n  lr: 0.1\ndistributed:\n  overlap: true\n";
  const Config c =
      Config::fromYaml(file, "x.yaml",
                       {"optimizer.lr=0.2", "distributed.overlap=false", "train.run_name=foo",
                        "optimizer.lr = 0.3", "optimizer.name=adamw", "train.seed=7"});
  EXPECT_DOUBLE_EQ(c.optimizer.lr, 0.3);  // the last override of a key wins
  EXPECT_FALSE(c.distributed.overlap);
  EXPECT_EQ(c.train.run_name, "foo");
  EXPECT_EQ(c.optimizer.name, "adamw");
  EXPECT_EQ(c.train.seed, 7u);
  // Strings stay strings even when they look like another type.
  EXPECT_EQ(Config::fromYaml("", "x", {"train.run_name=123"}).train.run_name, "123");
  EXPECT_EQ(Config::fromYaml("", "x", {"train.run_name="}).train.run_name, "");
}

TEST(Config, OverridesAreValidatedLikeTheFile) {
  const ConfigError e = parseError("", {"optimizer.lr=fast"});
  EXPECT_CONTAINS(e.what(), "optimizer.lr must be a number, got 'fast'");
  EXPECT_CONTAINS(e.what(), "--set 'optimizer.lr=fast'");
  EXPECT_CONTAINS(message("", {"optimizer.lrr=1"}), "did you mean 'lr'?");
  EXPECT_CONTAINS(message("", {"optimizer.epochs=1"}), "belongs in section 'train'");
  EXPECT_CONTAINS(message("", {"optimiser.lr=1"}), "unknown section 'optimiser'");
  EXPECT_CONTAINS(message("", {"data.batch_size=0"}), "data.batch_size must be >= 1");
  EXPECT_CONTAINS(message("", {"distributed.backend=tcp"}), "one of ring, mpi, nccl");
}

TEST(Config, MalformedOverrideShowsTheForm) {
  for (const std::string bad : {"optimizer.lr", "lr=0.1", "=3", ".lr=1", "optimizer.=1"}) {
    const ConfigError e = parseError("", {bad});
    EXPECT_CONTAINS(e.what(), "malformed override '" + bad + "'");
    EXPECT_CONTAINS(e.what(), "section.key=value");
    EXPECT_CONTAINS(e.hint(), "--set optimizer.lr=0.1");
  }
}

TEST(Config, ModelOptionsPassThrough) {
  const Config c = Config::fromYaml(
      kFullFile, "full.yaml",
      {"model.options.dropout=0.5", "model.options.block.depth=3", "model.options.label='007'"});
  const YAML::Node& options = c.model.options;
  ASSERT_TRUE(options.IsMap());
  EXPECT_EQ(options["hidden"][1].as<int>(), 128);
  EXPECT_DOUBLE_EQ(options["dropout"].as<double>(), 0.5);
  EXPECT_EQ(options["block"]["depth"].as<int>(), 3);
  EXPECT_EQ(options["label"].as<std::string>(), "007");

  const std::string yaml = c.toYaml();
  const Config back = Config::fromYaml(yaml, "resolved.yaml");
  EXPECT_EQ(back.model.options["hidden"][0].as<int>(), 256);
  EXPECT_EQ(back.model.options["block"]["depth"].as<int>(), 3);
  EXPECT_EQ(back.model.options["label"].Tag(), "!");  // stayed a quoted string
  // Options are not validated: any key is accepted.
  EXPECT_NO_THROW(Config::fromYaml("model:\n  options:\n    anything_at_all: {x: 1}\n", "x"));
  // A whole map can be replaced too, and a non-map option cannot be descended into.
  EXPECT_EQ(
      Config::fromYaml("", "x", {"model.options={width: 9}"}).model.options["width"].as<int>(), 9);
  EXPECT_CONTAINS(message(kFullFile, {"model.options.dropout.x=1"}),
                  "model.options.dropout is '0.25', not a map");
}

TEST(Config, ToYamlRoundTripsExactly) {
  Config c = Config::fromYaml(kFullFile, "full.yaml");
  c.optimizer.lr = 0.1 + 0.2;  // 0.30000000000000004: needs 17 significant digits
  c.data.mean = 1.0 / 3.0;
  c.optimizer.eps = std::numeric_limits<double>::denorm_min();
  c.distributed.timeout_s = 1e300;
  c.train.run_name = "a: b # not a comment";
  c.data.dir = "~";
  const std::string yaml = c.toYaml();
  const Config back = Config::fromYaml(yaml, "resolved.yaml");
  expectSameConfig(c, back);
  EXPECT_EQ(back.toYaml(), yaml);

  // Every key of every section is written, sections in schema order.
  size_t lastSection = 0;
  for (const std::string& section : configSections()) {
    const size_t pos = yaml.compare(0, section.size() + 1, section + ":") == 0
                           ? 0
                           : yaml.find("\n" + section + ":");
    ASSERT_NE(pos, std::string::npos) << section;
    EXPECT_GE(pos, lastSection);
    lastSection = pos;
  }
  for (const ConfigKey& key : configSchema()) EXPECT_CONTAINS(yaml, "  " + key.key + ":");

  // The defaults round-trip too.
  expectSameConfig(Config::fromYaml(Config::fromYaml("", "x").toYaml(), "y"),
                   Config::fromYaml("", "x"));
}

TEST(Config, FromFileUsesTheStemAsRunName) {
  const TempFile file("stem_test_config.yaml", "optimizer:\n  lr: 0.2\n");
  const Config c = Config::fromFile(file.path());
  EXPECT_EQ(c.train.run_name, "stem_test_config");
  EXPECT_DOUBLE_EQ(c.optimizer.lr, 0.2);
  EXPECT_EQ(Config::fromFile(file.path(), {"train.run_name=mine"}).train.run_name, "mine");
}

TEST(Config, FromFileErrorsNameThePath) {
  const std::string missing = (fs::path(::testing::TempDir()) / "no_such_config.yaml").string();
  try {
    Config::fromFile(missing);
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_CONTAINS(e.what(), "'" + missing + "' does not exist");
  }
  EXPECT_THROW(Config::fromFile(::testing::TempDir()), ConfigError);  // a directory

  const TempFile broken("broken_config.yaml", "train:\n  epochs: [1,\n");
  try {
    Config::fromFile(broken.path());
    FAIL() << "expected a ConfigError";
  } catch (const ConfigError& e) {
    EXPECT_CONTAINS(e.what(), "YAML syntax error in " + broken.path() + " at line");
  }
}

// The example configs shipped in configs/ must always parse.
TEST(Config, ShippedConfigsParse) {
  const fs::path dir = fs::path(RINGTRAIN_SOURCE_DIR) / "configs";
  size_t parsed = 0;
  if (fs::is_directory(dir)) {
    for (const auto& entry : fs::directory_iterator(dir)) {
      if (entry.path().extension() != ".yaml") continue;
      EXPECT_NO_THROW(Config::fromFile(entry.path().string())) << entry.path();
      ++parsed;
    }
  }
  if (parsed == 0) GTEST_SKIP() << "no configs/*.yaml yet";
}

// A "billion laughs" config: nine levels of nine aliases each stand for 9^9 scalars. Before the
// bound, walking it (--print-config, the config comparison between ranks) never ended.
TEST(Config, YamlAliasesAreRefusedBeforeAnyWalk) {
  std::string laughs = "model:\n  name: fashion_mlp\n  options:\n    l0: &l0 [a,a,a,a,a,a,a,a,a]\n";
  for (int i = 1; i < 9; ++i) {
    laughs += "    l" + std::to_string(i) + ": &l" + std::to_string(i) + " [";
    for (int j = 0; j < 9; ++j) laughs += (j ? ",*l" : "*l") + std::to_string(i - 1);
    laughs += "]\n";
  }
  EXPECT_CONTAINS(message(laughs), "configs/x.yaml uses a YAML alias (*name) at line 5");
  EXPECT_CONTAINS(parseError(laughs).hint(), "write the value out");
  // The same through --set, whose value is YAML too.
  EXPECT_CONTAINS(message("", {"model.options.x=[&a [1,2],*a,*a]"}), "uses a YAML alias");
  // An anchor alone (nothing refers to it) is harmless and still accepted.
  EXPECT_NO_THROW(Config::fromYaml("optimizer: &o\n  lr: 0.5\n", "a.yaml"));
}

TEST(Config, TooManyOrTooDeepYamlNodesAreRefused) {
  std::string many = "model:\n  name: fashion_mlp\n  options:\n    x: [";
  for (int i = 0; i < 100001; ++i) many += "1,";
  many += "1]\n";
  EXPECT_CONTAINS(message(many), "holds more than 100000 YAML nodes");
  // yaml-cpp's own depth guard: a syntax error, not a stack overflow.
  const std::string deep =
      "model:\n  options:\n    x: " + std::string(5000, '[') + std::string(5000, ']') + "\n";
  EXPECT_CONTAINS(message(deep), "YAML syntax error in configs/x.yaml");
}

}  // namespace
}  // namespace ringtrain
