// The config schema: one entry per (section, key) with its type, allowed values or range,
// and a binding to the Config field it fills. The default of a key is whatever the field's
// member initialiser says (read from a default-constructed Config), so defaults live in one
// place only: trainer/config/config.h. Parsing, validation and toYaml() all walk this table, so
// adding a key is one line in config_schema.cpp plus the field in config.h. The lookups
// here also explain a name that is not in the table (closest key, owning section).
#pragma once

#include "core/names.h"
#include "trainer/config/config.h"

#include <yaml-cpp/yaml.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <variant>
#include <vector>

namespace ringtrain {

enum class ConfigType { String, Int, Uint, Float, Bool, Enum, Map };

// One key's value, in the C++ type of its field (Enum is a std::string, Map a YAML::Node).
using ConfigValue = std::variant<std::string, int64_t, uint64_t, double, bool, YAML::Node>;

// A numeric limit: value >= bound when inclusive, value > bound (or <) otherwise.
struct ConfigBound {
  double value;
  bool inclusive;
};

struct ConfigKey {
  std::string section;
  std::string key;
  ConfigType type = ConfigType::String;
  std::vector<std::string> choices;  // Enum only
  std::optional<ConfigBound> lower;
  std::optional<ConfigBound> upper;
  // May differ between the ranks of one job (a host's data mount, its core count): the
  // start-up comparison of the ranks' configs skips it (docs/configuration.md).
  bool perRank = false;
  std::function<void(Config&, const ConfigValue&)> assign;
  std::function<ConfigValue(const Config&)> read;

  std::string path() const { return section + "." + key; }

  // Builder steps used by the table: field(...).above(0), field(...).oneOf({...}).
  ConfigKey oneOf(std::vector<std::string> allowed) &&;
  ConfigKey atLeast(double bound) &&;
  ConfigKey above(double bound) &&;
  ConfigKey below(double bound) &&;
  ConfigKey mayDifferPerRank() &&;
};

// Every key, sections in file order (model, data, optimizer, schedule, train, distributed,
// checkpoint) and keys in field order within a section.
const std::vector<ConfigKey>& configSchema();
// The section names in file order.
const std::vector<std::string>& configSections();
// nullptr when the section has no such key.
const ConfigKey* findConfigKey(const std::string& section, const std::string& key);
// The keys of one section, in schema order.
std::vector<std::string> configKeysOf(const std::string& section);

// Lookups for names a user wrote. On failure they throw a ConfigError that says what would
// be valid: the closest name by edit distance, or the section a misplaced key belongs in.
// `where` names the origin for the message, e.g. "configs/x.yaml (line 3, column 3)".
void requireConfigSection(const std::string& section, const std::string& where);
const ConfigKey& requireConfigKey(const std::string& section, const std::string& key,
                                  const std::string& where);

// "a string", "an integer", "a number", ... for messages.
std::string configTypeName(const ConfigKey& key);

}  // namespace ringtrain
