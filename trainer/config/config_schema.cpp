#include "trainer/config/config_schema.h"

#include "core/error.h"
#include "core/names.h"

#include <algorithm>
#include <cctype>
#include <type_traits>
#include <utility>

namespace ringtrain {

ConfigKey ConfigKey::oneOf(std::vector<std::string> allowed) && {
  type = ConfigType::Enum;
  choices = std::move(allowed);
  return std::move(*this);
}

ConfigKey ConfigKey::atLeast(double bound) && {
  lower = ConfigBound{bound, true};
  return std::move(*this);
}

ConfigKey ConfigKey::above(double bound) && {
  lower = ConfigBound{bound, false};
  return std::move(*this);
}

ConfigKey ConfigKey::below(double bound) && {
  upper = ConfigBound{bound, false};
  return std::move(*this);
}

ConfigKey ConfigKey::mayDifferPerRank() && {
  perRank = true;
  return std::move(*this);
}

namespace {

template <typename T>
constexpr ConfigType typeOf() {
  if constexpr (std::is_same_v<T, std::string>) {
    return ConfigType::String;
  } else if constexpr (std::is_same_v<T, int64_t>) {
    return ConfigType::Int;
  } else if constexpr (std::is_same_v<T, uint64_t>) {
    return ConfigType::Uint;
  } else if constexpr (std::is_same_v<T, double>) {
    return ConfigType::Float;
  } else if constexpr (std::is_same_v<T, bool>) {
    return ConfigType::Bool;
  } else {
    static_assert(std::is_same_v<T, YAML::Node>, "config fields must be a schema type");
    return ConfigType::Map;
  }
}

// Binds keys of one section: `optimizer("lr", &OptimizerConfig::lr)` makes the entry whose
// assign/read reach c.optimizer.lr. The section name and member are named once per section.
template <typename Section>
class SectionBinder {
 public:
  SectionBinder(const char* name, Section Config::*section) : name_(name), section_(section) {}

  template <typename T>
  ConfigKey operator()(const char* key, T Section::*member) const {
    ConfigKey entry;
    entry.section = name_;
    entry.key = key;
    entry.type = typeOf<T>();
    const auto section = section_;
    entry.assign = [section, member](Config& c, const ConfigValue& v) {
      T& field = (c.*section).*member;
      if constexpr (std::is_same_v<T, YAML::Node>) {
        // Node::operator= writes through to the node it already refers to (which a copied
        // Config may share); reset() rebinds this field only.
        field.reset(std::get<T>(v));
      } else {
        field = std::get<T>(v);
      }
    };
    entry.read = [section, member](const Config& c) -> ConfigValue { return (c.*section).*member; };
    return entry;
  }

 private:
  const char* name_;
  Section Config::*section_;
};

std::vector<ConfigKey> buildSchema() {
  const SectionBinder model("model", &Config::model);
  const SectionBinder data("data", &Config::data);
  const SectionBinder optimizer("optimizer", &Config::optimizer);
  const SectionBinder schedule("schedule", &Config::schedule);
  const SectionBinder train("train", &Config::train);
  const SectionBinder distributed("distributed", &Config::distributed);
  const SectionBinder ps("ps", &Config::ps);
  const SectionBinder checkpoint("checkpoint", &Config::checkpoint);
  const SectionBinder metrics("metrics", &Config::metrics);
  // clang-format off
  return {
    model("name", &ModelConfig::name),
    model("options", &ModelConfig::options),

    data("name", &DataConfig::name),
    data("dir", &DataConfig::dir).mayDifferPerRank(),
    data("batch_size", &DataConfig::batch_size).atLeast(1),
    data("eval_batch_size", &DataConfig::eval_batch_size).atLeast(1),
    data("prefetch", &DataConfig::prefetch).atLeast(1).mayDifferPerRank(),
    data("mean", &DataConfig::mean),
    data("std", &DataConfig::std).above(0),
    data("shuffle", &DataConfig::shuffle),
    data("block_size", &DataConfig::block_size).atLeast(0),
    data("token_format", &DataConfig::token_format).oneOf({"ringtrain", "nanogpt"}),
    data("label_column", &DataConfig::label_column),
    data("target_type", &DataConfig::target_type).oneOf({"class", "float"}),

    optimizer("name", &OptimizerConfig::name).oneOf({"sgd", "adam", "adamw"}),
    optimizer("lr", &OptimizerConfig::lr).above(0),
    optimizer("momentum", &OptimizerConfig::momentum).atLeast(0),
    optimizer("nesterov", &OptimizerConfig::nesterov),
    optimizer("weight_decay", &OptimizerConfig::weight_decay).atLeast(0),
    optimizer("beta1", &OptimizerConfig::beta1).atLeast(0).below(1),
    optimizer("beta2", &OptimizerConfig::beta2).atLeast(0).below(1),
    optimizer("eps", &OptimizerConfig::eps).above(0),

    schedule("name", &ScheduleConfig::name).oneOf({"constant", "step", "cosine"}),
    schedule("warmup_steps", &ScheduleConfig::warmup_steps).atLeast(0),
    schedule("step_size", &ScheduleConfig::step_size).atLeast(1),
    schedule("gamma", &ScheduleConfig::gamma).above(0),
    schedule("min_lr", &ScheduleConfig::min_lr).atLeast(0),

    train("run_name", &TrainConfig::run_name),
    train("epochs", &TrainConfig::epochs).atLeast(1),
    train("max_steps", &TrainConfig::max_steps).atLeast(0),
    train("seed", &TrainConfig::seed),
    train("log_every", &TrainConfig::log_every).atLeast(1),
    train("grad_clip_norm", &TrainConfig::grad_clip_norm).atLeast(0),
    train("threads", &TrainConfig::threads).atLeast(0).mayDifferPerRank(),
    train("check_replicas_every", &TrainConfig::check_replicas_every).atLeast(0),
    train("retain_host_memory", &TrainConfig::retain_host_memory).mayDifferPerRank(),
    train("grad_accumulation", &TrainConfig::grad_accumulation).atLeast(1),
    train("on_nonfinite", &TrainConfig::on_nonfinite).oneOf({"abort", "skip"}),
    train("precision", &TrainConfig::precision).oneOf({"fp32", "bf16"}),
    train("straggler_ratio", &TrainConfig::straggler_ratio).atLeast(0),
    train("loss", &TrainConfig::loss).oneOf({"cross_entropy", "mse"}),
    train("metric", &TrainConfig::metric).oneOf({"auto", "accuracy", "loss"}),
    train("sample_log", &TrainConfig::sample_log),
    train("timeline", &TrainConfig::timeline),

    distributed("backend", &DistributedConfig::backend).oneOf({"ring", "mpi", "nccl"}),
    distributed("mode", &DistributedConfig::mode).oneOf({"allreduce", "ps"}),
    distributed("bucket_mb", &DistributedConfig::bucket_mb).above(0),
    distributed("overlap", &DistributedConfig::overlap),
    distributed("shared_memory", &DistributedConfig::shared_memory),
    distributed("compression", &DistributedConfig::compression).oneOf({"none", "bf16", "fp16"}),
    distributed("zero", &DistributedConfig::zero).atLeast(0),
    distributed("timeout_s", &DistributedConfig::timeout_s).above(0),
    distributed("fingerprint_every", &DistributedConfig::fingerprint_every).atLeast(0),

    ps("servers", &PsConfig::servers).atLeast(1),
    ps("placement", &PsConfig::placement).oneOf({"last", "first", "spread"}),
    ps("consistency", &PsConfig::consistency).oneOf({"bsp", "asp", "ssp"}),
    ps("staleness", &PsConfig::staleness).atLeast(0),

    checkpoint("every_steps", &CheckpointConfig::every_steps).atLeast(0),
    checkpoint("keep_last", &CheckpointConfig::keep_last).atLeast(1),
    checkpoint("enabled", &CheckpointConfig::enabled),

    metrics("tensorboard", &MetricsConfig::tensorboard),
    metrics("prometheus_port", &MetricsConfig::prometheus_port).atLeast(0).below(65536),
    metrics("prometheus_address", &MetricsConfig::prometheus_address),
    metrics("prometheus_textfile", &MetricsConfig::prometheus_textfile),
  };
  // clang-format on
}

std::vector<std::string> sectionsHaving(const std::string& key) {
  std::vector<std::string> sections;
  for (const ConfigKey& k : configSchema()) {
    if (k.key == key) sections.push_back("'" + k.section + "'");
  }
  return sections;
}

}  // namespace

const std::vector<ConfigKey>& configSchema() {
  static const std::vector<ConfigKey> schema = buildSchema();
  return schema;
}

const std::vector<std::string>& configSections() {
  static const std::vector<std::string> sections = [] {
    std::vector<std::string> names;
    for (const ConfigKey& k : configSchema()) {
      if (names.empty() || names.back() != k.section) names.push_back(k.section);
    }
    return names;
  }();
  return sections;
}

const ConfigKey* findConfigKey(const std::string& section, const std::string& key) {
  for (const ConfigKey& k : configSchema()) {
    if (k.section == section && k.key == key) return &k;
  }
  return nullptr;
}

std::vector<std::string> configKeysOf(const std::string& section) {
  std::vector<std::string> keys;
  for (const ConfigKey& k : configSchema()) {
    if (k.section == section) keys.push_back(k.key);
  }
  return keys;
}

void requireConfigSection(const std::string& section, const std::string& where) {
  const auto& sections = configSections();
  if (std::find(sections.begin(), sections.end(), section) != sections.end()) return;
  std::string message = "unknown section '" + section + "' in " + where;
  const auto owners = sectionsHaving(section);
  if (!owners.empty()) {
    message +=
        ": '" + section + "' is a key of section " + joinNames(owners, " or ") + ", not a section";
  } else {
    message += didYouMean(section, sections);
  }
  throw ConfigError(message, "valid sections: " + joinNames(sections));
}

const ConfigKey& requireConfigKey(const std::string& section, const std::string& key,
                                  const std::string& where) {
  if (const ConfigKey* entry = findConfigKey(section, key)) return *entry;
  std::string message = "unknown key '" + key + "' in section '" + section + "' of " + where;
  const auto owners = sectionsHaving(key);
  if (!owners.empty()) {
    message += ": '" + key + "' belongs in section " + joinNames(owners, " or ");
  } else {
    message += didYouMean(key, configKeysOf(section));
  }
  throw ConfigError(message,
                    "valid keys in '" + section + "': " + joinNames(configKeysOf(section)));
}

std::string configTypeName(const ConfigKey& key) {
  switch (key.type) {
    case ConfigType::String:
      return "a string";
    case ConfigType::Int:
      return "an integer";
    case ConfigType::Uint:
      return "a non-negative integer";
    case ConfigType::Float:
      return "a number";
    case ConfigType::Bool:
      return "a boolean (true or false)";
    case ConfigType::Enum:
      return "one of the strings listed";
    case ConfigType::Map:
      return "a map of key: value";
  }
  return "a value";
}

}  // namespace ringtrain
