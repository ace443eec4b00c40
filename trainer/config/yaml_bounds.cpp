// checkYamlBounds (config.h): YAML text is checked over the parser's events, before any node
// is built from it.
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>

#include <cstdint>
#include <sstream>
#include <string>

#include "core/error.h"
#include "trainer/config/config.h"

namespace ringtrain {
namespace {

// Refuses what a config never needs and a crafted one uses to exhaust the machine: an alias
// (`*a`) lets a few hundred bytes stand for billions of nodes once walked (each alias repeats
// a whole subtree, and aliases of aliases multiply), and millions of nodes. yaml-cpp itself
// bounds the nesting depth. Runs over the parser's events, before any node is built.
class YamlBounds : public YAML::EventHandler {
 public:
  explicit YamlBounds(std::string source) : source_(std::move(source)) {}
  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark& mark, YAML::anchor_t) override { count(mark); }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t) override {
    throw ConfigError(source_ + " uses a YAML alias (*name) at line " +
                          std::to_string(mark.line + 1) + ", column " +
                          std::to_string(mark.column + 1) + "; a ringtrain config has none",
                      "write the value out where the alias stands");
  }
  void OnScalar(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                const std::string&) override {
    count(mark);
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {
    count(mark);
  }
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {
    count(mark);
  }
  void OnMapEnd() override {}

 private:
  // Far above any config (the built-in ones have about a hundred nodes).
  static constexpr int64_t kMaxNodes = 100000;
  void count(const YAML::Mark& mark) {
    if (++nodes_ > kMaxNodes) {
      throw ConfigError(source_ + " holds more than " + std::to_string(kMaxNodes) +
                            " YAML nodes (at line " + std::to_string(mark.line + 1) +
                            "): not a config",
                        "pass the training config file, not a data file");
    }
  }
  std::string source_;
  int64_t nodes_ = 0;
};

}  // namespace

void checkYamlBounds(const std::string& text, const std::string& source) {
  std::istringstream in(text);
  YAML::Parser parser(in);
  YamlBounds bounds(source);
  while (parser.HandleNextDocument(bounds)) {
  }
}

}  // namespace ringtrain
