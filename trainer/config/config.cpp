// Config parsing and validation. Every value, from the file or from a --set override, goes
// through the same path: find the schema entry (or explain why there is none), convert the
// YAML scalar to the field's type, check enum values and bounds, assign. Messages name the
// key, where it came from (file, line, column, or the --set text) and what would be valid.
#include "trainer/config/config.h"

#include "core/error.h"
#include "trainer/config/config_schema.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <system_error>

namespace ringtrain {
namespace {

// Where a value or key came from, for messages.
struct Origin {
  std::string source;  // the file name, or the --set text
  bool isOverride = false;
  YAML::Mark mark = YAML::Mark::null_mark();

  Origin at(const YAML::Node& node) const {
    Origin o = *this;
    if (!isOverride) o.mark = node.Mark();
    return o;
  }
  // "configs/x.yaml (line 5, column 3)" or "--set 'optimizer.lr=fast'".
  std::string describe() const {
    if (isOverride) return "--set '" + source + "'";
    if (mark.is_null()) return source;
    return source + " (line " + std::to_string(mark.line + 1) + ", column " +
           std::to_string(mark.column + 1) + ")";
  }
};

// How a node looks in a message: the scalar text quoted, or what kind of node it is.
std::string seen(const YAML::Node& node) {
  if (node.IsScalar()) return "'" + node.Scalar() + "'";
  if (node.IsMap()) return "a map";
  if (node.IsSequence()) return "a list";
  return "an empty value";
}

// Text of a value as it appears in YAML, for toYaml() and for the defaults in hints.
std::string formatDouble(double v) {
  char buffer[64];
  // Shortest text that parses back to the same double, so configs round-trip exactly.
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), v);
  return std::string(buffer, result.ptr);
}

std::string scalarText(const ConfigValue& value) {
  if (const auto* s = std::get_if<std::string>(&value)) return *s;
  if (const auto* i = std::get_if<int64_t>(&value)) return std::to_string(*i);
  if (const auto* u = std::get_if<uint64_t>(&value)) return std::to_string(*u);
  if (const auto* d = std::get_if<double>(&value)) return formatDouble(*d);
  if (const auto* b = std::get_if<bool>(&value)) return *b ? "true" : "false";
  return "{}";
}

template <typename T>
bool parseInteger(std::string text, T& out) {
  if (!text.empty() && text[0] == '+') text.erase(0, 1);
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, out);
  return result.ec == std::errc() && result.ptr == end;
}

bool parseDouble(std::string text, double& out) {
  if (!text.empty() && text[0] == '+') text.erase(0, 1);
  const char* end = text.data() + text.size();
  const auto result = std::from_chars(text.data(), end, out);
  return result.ec == std::errc() && result.ptr == end;
}

// Integers may also be written as an exactly integral number such as 1e4 or 64.0.
bool parseIntegralDouble(const std::string& text, double& out) {
  constexpr double kExactLimit = 9007199254740992.0;  // 2^53: every integer below is exact
  return parseDouble(text, out) && std::isfinite(out) && std::floor(out) == out &&
         std::fabs(out) < kExactLimit;
}

[[noreturn]] void throwWrongType(const ConfigKey& key, const YAML::Node& node, const Origin& origin,
                                 const std::string& expected) {
  throw ConfigError(
      key.path() + " must be " + expected + ", got " + seen(node) + " (in " + origin.describe() +
          ")",
      "write it like the default: " + key.key + ": " + scalarText(key.read(Config{})));
}

void checkBounds(const ConfigKey& key, double v, const std::string& text, const Origin& origin) {
  auto fail = [&](const char* op, double bound) {
    throw ConfigError(key.path() + " must be " + op + " " + formatDouble(bound) + ", got " + text +
                          " (in " + origin.describe() + ")",
                      "the default is " + scalarText(key.read(Config{})));
  };
  if (key.lower) {
    if (key.lower->inclusive ? !(v >= key.lower->value) : !(v > key.lower->value)) {
      fail(key.lower->inclusive ? ">=" : ">", key.lower->value);
    }
  }
  if (key.upper) {
    if (key.upper->inclusive ? !(v <= key.upper->value) : !(v < key.upper->value)) {
      fail(key.upper->inclusive ? "<=" : "<", key.upper->value);
    }
  }
}

// Converts one YAML value to the key's type, and checks its enum values and bounds.
ConfigValue convertValue(const ConfigKey& key, const YAML::Node& node, const Origin& origin) {
  if (key.type == ConfigType::Map) {
    if (node.IsNull()) return YAML::Node(YAML::NodeType::Map);
    if (!node.IsMap()) throwWrongType(key, node, origin, configTypeName(key));
    // A private copy: the Config must not share nodes with the parsed document.
    return YAML::Clone(node);
  }
  if (!node.IsScalar()) {
    const std::string expected =
        key.type == ConfigType::Enum ? "one of " + joinNames(key.choices) : configTypeName(key);
    throwWrongType(key, node, origin, expected);
  }
  const std::string& text = node.Scalar();
  switch (key.type) {
    case ConfigType::String:
      return text;
    case ConfigType::Enum: {
      if (std::find(key.choices.begin(), key.choices.end(), text) != key.choices.end()) {
        return text;
      }
      throw ConfigError(key.path() + " must be one of " + joinNames(key.choices) + ", got '" +
                            text + "'" + didYouMean(text, key.choices) + " (in " +
                            origin.describe() + ")",
                        "allowed values for " + key.path() + ": " + joinNames(key.choices));
    }
    case ConfigType::Int: {
      int64_t v = 0;
      double d = 0;
      if (!parseInteger(text, v)) {
        if (!parseIntegralDouble(text, d)) throwWrongType(key, node, origin, "an integer");
        v = static_cast<int64_t>(d);
      }
      checkBounds(key, static_cast<double>(v), text, origin);
      return v;
    }
    case ConfigType::Uint: {
      uint64_t v = 0;
      double d = 0;
      if (!parseInteger(text, v)) {
        if (!parseIntegralDouble(text, d) || d < 0) {
          throwWrongType(key, node, origin, "a non-negative integer");
        }
        v = static_cast<uint64_t>(d);
      }
      checkBounds(key, static_cast<double>(v), text, origin);
      return v;
    }
    case ConfigType::Float: {
      double v = 0;
      if (!parseDouble(text, v)) throwWrongType(key, node, origin, "a number");
      if (!std::isfinite(v)) throwWrongType(key, node, origin, "a finite number");
      checkBounds(key, v, text, origin);
      return v;
    }
    case ConfigType::Bool: {
      bool v = false;
      if (!YAML::convert<bool>::decode(node, v)) {
        throwWrongType(key, node, origin, "a boolean (true or false)");
      }
      return v;
    }
    case ConfigType::Map:
      break;  // handled above
  }
  throwWrongType(key, node, origin, configTypeName(key));
}

void applyValue(Config& config, const ConfigKey& key, const YAML::Node& node,
                const Origin& origin) {
  key.assign(config, convertValue(key, node, origin));
}

YAML::Node parseYaml(const std::string& text, const std::string& source) {
  try {
    checkYamlBounds(text, source);
    std::vector<YAML::Node> documents = YAML::LoadAll(text);
    if (documents.size() > 1) {
      throw ConfigError(source + " holds " + std::to_string(documents.size()) +
                            " YAML documents; a config is one",
                        "remove the '---' separators and merge the documents");
    }
    return documents.empty() ? YAML::Node() : documents.front();
  } catch (const YAML::Exception& e) {
    throw ConfigError("YAML syntax error in " + source + " at line " +
                          std::to_string(e.mark.line + 1) + ", column " +
                          std::to_string(e.mark.column + 1) + ": " + e.msg,
                      "check the indentation (spaces, not tabs), the quoting, and that every "
                      "'key: value' has a space after the colon");
  }
}

// Map keys must be plain names; duplicates are refused because YAML readers disagree on
// which one wins.
std::string keyName(const YAML::Node& keyNode, std::set<std::string>& seenKeys,
                    const std::string& where, const Origin& origin) {
  if (!keyNode.IsScalar()) {
    throw ConfigError("keys " + where + " must be plain names, got " + seen(keyNode) + " (in " +
                          origin.at(keyNode).describe() + ")",
                      "write 'key: value' lines");
  }
  const std::string& name = keyNode.Scalar();
  if (!seenKeys.insert(name).second) {
    throw ConfigError(
        "duplicate key '" + name + "' " + where + " of " + origin.at(keyNode).describe(),
        "keep only one of the two lines");
  }
  return name;
}

void applyDocument(Config& config, const YAML::Node& root, const std::string& source) {
  const Origin origin{source};
  if (root.IsNull()) return;  // an empty file: every key keeps its default
  if (!root.IsMap()) {
    throw ConfigError("the top level of " + origin.at(root).describe() +
                          " must be a map of sections, got " + seen(root),
                      "write sections such as 'optimizer:' with indented 'key: value' lines; "
                      "valid sections: " +
                          joinNames(configSections()));
  }
  std::set<std::string> sectionsSeen;
  for (const auto& sectionItem : root) {
    const std::string section =
        keyName(sectionItem.first, sectionsSeen, "at the top level", origin);
    requireConfigSection(section, origin.at(sectionItem.first).describe());
    const YAML::Node& body = sectionItem.second;
    if (body.IsNull()) continue;  // "optimizer:" with nothing under it
    if (!body.IsMap()) {
      throw ConfigError("section '" + section + "' must be a map of key: value, got " + seen(body) +
                            " (in " + origin.at(body).describe() + ")",
                        "valid keys in '" + section + "': " + joinNames(configKeysOf(section)));
    }
    std::set<std::string> keysSeen;
    for (const auto& item : body) {
      const std::string key = keyName(item.first, keysSeen, "in section '" + section + "'", origin);
      const ConfigKey& entry = requireConfigKey(section, key, origin.at(item.first).describe());
      applyValue(config, entry, item.second, origin.at(item.second));
    }
  }
}

std::string trimmed(const std::string& s) {
  const auto first = s.find_first_not_of(" \t");
  if (first == std::string::npos) return {};
  return s.substr(first, s.find_last_not_of(" \t") - first + 1);
}

// model.options.a.b=v: sets a value inside the free-form options map, creating the maps on
// the way.
void setOption(Config& config, const std::string& optionPath, const YAML::Node& value,
               const Origin& origin) {
  if (!config.model.options.IsMap()) config.model.options.reset(YAML::Node(YAML::NodeType::Map));
  YAML::Node node = config.model.options;
  std::string rest = optionPath;
  std::string walked = "model.options";
  for (size_t dot = rest.find('.'); dot != std::string::npos; dot = rest.find('.')) {
    const std::string part = rest.substr(0, dot);
    rest.erase(0, dot + 1);
    walked += "." + part;
    YAML::Node child = node[part];
    if (!child.IsDefined() || child.IsNull()) {
      node[part] = YAML::Node(YAML::NodeType::Map);
      child.reset(node[part]);
    } else if (!child.IsMap()) {
      throw ConfigError(walked + " is " + seen(child) + ", not a map, so " + walked + "." + rest +
                            " cannot be set (in " + origin.describe() + ")",
                        "set " + walked + " itself, or use a different option name");
    }
    node.reset(child);  // rebinding; Node::operator= would overwrite the parent's entry
  }
  if (rest.empty()) {
    throw ConfigError("empty option name in " + origin.describe(),
                      "use --set model.options.NAME=value");
  }
  node[rest] = YAML::Clone(value);
}

void applyOverride(Config& config, const std::string& text) {
  const Origin origin{text, true};
  const std::string formHint =
      "write overrides as --set section.key=value, e.g. --set optimizer.lr=0.1";
  const size_t equals = text.find('=');
  if (equals == std::string::npos) {
    throw ConfigError("malformed override '" + text + "': expected section.key=value", formHint);
  }
  const std::string path = trimmed(text.substr(0, equals));
  const size_t dot = path.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 == path.size()) {
    throw ConfigError("malformed override '" + text + "': expected section.key=value, and '" +
                          path + "' has no section.key form",
                      formHint);
  }
  const std::string section = path.substr(0, dot);
  const std::string key = path.substr(dot + 1);
  requireConfigSection(section, origin.describe());

  // Values are YAML scalars, so they are typed exactly as in a file; an empty value is the
  // empty string (e.g. train.run_name= to fall back to the file stem).
  const std::string valueText = text.substr(equals + 1);
  YAML::Node value;
  if (trimmed(valueText).empty()) {
    value = YAML::Node(std::string());
  } else {
    try {
      checkYamlBounds(valueText, origin.describe());
      value = YAML::Load(valueText);
    } catch (const YAML::Exception& e) {
      throw ConfigError("cannot parse the value of " + origin.describe() + ": " + e.msg,
                        "quote values with YAML special characters, e.g. "
                        "--set train.run_name='\"a: b\"'");
    }
  }

  const std::string optionsPrefix = "options.";
  if (section == "model" && key.compare(0, optionsPrefix.size(), optionsPrefix) == 0) {
    setOption(config, key.substr(optionsPrefix.size()), value, origin);
    return;
  }
  applyValue(config, requireConfigKey(section, key, origin.describe()), value, origin);
}

// Emits options as written: flow style stays flow, and scalars that were quoted in the source
// stay quoted, so a model factory that cares about "123" versus 123 sees the same thing after
// a round trip.
void emitNode(YAML::Emitter& out, const YAML::Node& node) {
  const bool flow = node.Style() == YAML::EmitterStyle::Flow;
  if (node.IsMap()) {
    if (flow) out << YAML::Flow;
    out << YAML::BeginMap;
    for (const auto& item : node) {
      out << YAML::Key;
      emitNode(out, item.first);
      out << YAML::Value;
      emitNode(out, item.second);
    }
    out << YAML::EndMap;
  } else if (node.IsSequence()) {
    if (flow) out << YAML::Flow;
    out << YAML::BeginSeq;
    for (const auto& item : node) emitNode(out, item);
    out << YAML::EndSeq;
  } else if (node.IsScalar()) {
    if (node.Tag() == "!") out << YAML::DoubleQuoted;
    out << node.Scalar();
  } else {
    out << YAML::Null;
  }
}

// One key's value, for toYaml() and agreedLines(): a map as written (an empty one as {}),
// any other value as its scalar text.
void emitValue(YAML::Emitter& out, const ConfigValue& value) {
  if (const auto* node = std::get_if<YAML::Node>(&value)) {
    if (node->IsMap() && node->size() > 0) {
      emitNode(out, *node);
    } else {
      out << YAML::Flow << YAML::BeginMap << YAML::EndMap;
    }
  } else {
    out << scalarText(value);
  }
}

}  // namespace

Config Config::fromYaml(const std::string& yamlText, const std::string& sourceName,
                        const std::vector<std::string>& overrides) {
  Config config;
  applyDocument(config, parseYaml(yamlText, sourceName), sourceName);
  for (const std::string& text : overrides) applyOverride(config, text);
  // Model factories can rely on a parsed config's options being a map, possibly empty.
  if (!config.model.options.IsMap()) config.model.options.reset(YAML::Node(YAML::NodeType::Map));
  // (Empty falls back to the config file's stem in fromFile.)
  if (!config.train.run_name.empty()) checkRunName(config.train.run_name);
  return config;
}

Config Config::fromFile(const std::string& path, const std::vector<std::string>& overrides) {
  namespace fs = std::filesystem;
  const std::string hint = "check the path; the example configs are in configs/";
  std::error_code ec;
  if (!fs::exists(path, ec)) {
    throw ConfigError("config file '" + path + "' does not exist", hint);
  }
  if (fs::is_directory(path, ec)) {
    throw ConfigError("config file '" + path + "' is a directory, not a YAML file", hint);
  }
  std::ifstream in(path, std::ios::binary);
  std::ostringstream text;
  if (in) text << in.rdbuf();
  if (!in || in.bad()) {
    throw ConfigError("cannot read config file '" + path + "'",
                      "check that the file is readable by this user");
  }
  Config config = fromYaml(text.str(), path, overrides);
  if (config.train.run_name.empty()) config.train.run_name = fs::path(path).stem().string();
  checkRunName(config.train.run_name);
  return config;
}

std::vector<std::string> Config::agreedLines() const {
  std::vector<std::string> lines;
  for (const ConfigKey& key : configSchema()) {
    if (key.perRank) continue;
    YAML::Emitter out;
    out << YAML::Flow;
    emitValue(out, key.read(*this));
    lines.push_back(key.path() + ": " + out.c_str());
  }
  return lines;
}

void checkRunName(const std::string& name, int rank) {
  if (name.empty() || name == "." || name == ".." || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos) {
    throw ConfigError("train.run_name '" + name +
                          "' is not a name: it must be one directory name under runs/ (no '/', "
                          "not '.' or '..')",
                      "give the run a plain name, or put a path in --run-dir", rank);
  }
}

std::string Config::toYaml() const {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const std::string& section : configSections()) {
    out << YAML::Key << section << YAML::Value << YAML::BeginMap;
    for (const ConfigKey& key : configSchema()) {
      if (key.section != section) continue;
      out << YAML::Key << key.key << YAML::Value;
      emitValue(out, key.read(*this));
    }
    out << YAML::EndMap;
  }
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

}  // namespace ringtrain
