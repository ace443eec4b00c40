// Experiment reports: metrics.jsonl parsing, config flattening and diffing, and an HTML page
// with one curve per run in every chart.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>

#include "core/error.h"
#include "trainer/report/report.h"

namespace fs = std::filesystem;

namespace ringtrain {
namespace {

size_t countOf(const std::string& text, const std::string& needle) {
  size_t n = 0;
  for (size_t pos = text.find(needle); pos != std::string::npos; pos = text.find(needle, pos + 1))
    ++n;
  return n;
}

RunData fakeRun(const std::string& name, double lr, double lossScale) {
  RunData run;
  run.dir = "runs/" + name;
  run.name = name;
  std::ostringstream jsonl;
  for (int step = 10; step <= 50; step += 10) {
    jsonl << "{\"kind\":\"train\",\"step\":" << step << ",\"epoch\":0,\"loss\":" << lossScale / step
          << ",\"lr\":" << lr << ",\"samples_per_s\":1000,\"forward_backward_ms\":" << step
          << ",\"sync_wait_ms\":0.5,\"time_s\":" << step * 0.1 << "}\n";
  }
  jsonl << "{\"kind\":\"eval\",\"step\":50,\"epoch\":1,\"test_loss\":" << lossScale / 60
        << ",\"test_accuracy\":0.5,\"time_s\":5.5}\n"
        << "{\"kind\":\"summary\",\"step\":50,\"best_accuracy\":0.5,\"wall_s\":6,"
           "\"samples_per_s\":900}\n";
  run.records = parseMetricsJsonl(jsonl.str(), name);
  run.config = flattenYaml(YAML::Load("optimizer: {name: sgd, lr: " + std::to_string(lr) +
                                      "}\ndata: {batch_size: 64}\n"));
  return run;
}

TEST(Report, ParsesMetricsLines) {
  const auto records = parseMetricsJsonl(
      "{\"kind\":\"train\",\"step\":5,\"loss\":0.5,\"x\":null}\n\n"
      "{ \"kind\" : \"eval\", \"test_accuracy\" : 1e-1 }\n"
      "{\"kind\":\"tra",  // torn last line of a killed run
      "m.jsonl");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].kind, "train");
  EXPECT_DOUBLE_EQ(records[0].values.at("loss"), 0.5);
  EXPECT_EQ(records[0].values.count("x"), 0u);  // null is left out
  EXPECT_DOUBLE_EQ(records[1].values.at("test_accuracy"), 0.1);
  try {
    parseMetricsJsonl("{\"kind\":\"train\"}\nnot json\n{\"kind\":\"eval\"}\n", "m.jsonl");
    FAIL() << "malformed line accepted";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("m.jsonl, line 2"), std::string::npos) << e.what();
  }
}

// A record a newer writer or a user's own code adds may nest values: the numbers around them
// still count, and nothing inside them is taken for a field.
TEST(Report, SkipsNestedValuesArraysAndEscapes) {
  const auto records = parseMetricsJsonl(
      R"({"kind":"train","step":7,"hist":{"loss":9,"a":[1,{"b":2}]},"ranks":[1,2,3],)"
      R"("note":"} \" \u00e9 {","loss":0.25,"ok":true,"bad":false})"
      "\n",
      "m.jsonl");
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].kind, "train");
  EXPECT_DOUBLE_EQ(records[0].values.at("loss"), 0.25);  // not the nested 9
  EXPECT_DOUBLE_EQ(records[0].values.at("step"), 7);
  EXPECT_DOUBLE_EQ(records[0].values.at("ok"), 1.0);
  EXPECT_EQ(records[0].values.size(), 3u);  // step, loss, ok: nothing of hist, ranks or note
  try {
    parseMetricsJsonl("{\"kind\":\"train\"}\n[1, 2]\n", "m.jsonl");
    FAIL() << "an array line was accepted as a record";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("m.jsonl, line 2"), std::string::npos) << e.what();
  }
}

TEST(Report, FlattensConfig) {
  const auto flat = flattenYaml(YAML::Load("a: {b: 1, c: {d: x}}\ne: [1, 2]\n"));
  EXPECT_EQ(flat.at("a.b"), "1");
  EXPECT_EQ(flat.at("a.c.d"), "x");
  EXPECT_EQ(flat.at("e"), "[1, 2]");
}

TEST(Report, HtmlHasOneCurvePerRunInEveryChartAndTheDifferingKeys) {
  const std::vector<RunData> runs = {fakeRun("base", 0.05, 2.0), fakeRun("fast", 0.1, 1.0),
                                     fakeRun("third", 0.2, 1.5)};
  const std::string html = renderReport(runs);
  EXPECT_EQ(html.rfind("<!DOCTYPE html>", 0), 0u);
  EXPECT_NE(html.find("</html>"), std::string::npos);
  EXPECT_EQ(html.find("http"), std::string::npos);  // self-contained: no links, no fetches
  EXPECT_EQ(html.find("<script"), std::string::npos);
  // 6 charts (3 metrics x {step, wall time}), 3 runs each.
  EXPECT_EQ(countOf(html, "<svg"), 6u);
  EXPECT_EQ(countOf(html, "</svg>"), 6u);
  EXPECT_EQ(countOf(html, "<polyline class=\"curve\""), 18u);
  for (const auto& name : {"base", "fast", "third"}) {
    EXPECT_EQ(countOf(html, std::string("data-run=\"") + name + "\""), 6u) << name;
  }
  // The training-loss polyline of "fast" has its 5 points.
  const std::regex polyline("<polyline class=\"curve\" data-run=\"fast\"[^>]*points=\"([^\"]*)\"");
  std::smatch match;
  ASSERT_TRUE(std::regex_search(html, match, polyline));
  EXPECT_EQ(countOf(match[1].str(), ","), 5u);
  // Config differences: lr differs, batch_size and optimizer name do not.
  EXPECT_NE(html.find("<code>optimizer.lr</code>"), std::string::npos);
  EXPECT_EQ(html.find("<code>data.batch_size</code>"), std::string::npos);
  EXPECT_EQ(html.find("<code>optimizer.name</code>"), std::string::npos);
  EXPECT_NE(html.find("<td>900</td>"), std::string::npos);  // whole-run samples/s (summary)
  // Step phases: the mean over the train records (steps 10..50: 30 ms forward+backward).
  EXPECT_NE(html.find("<td>30.00</td><td>0.50</td>"), std::string::npos);
}

TEST(Report, RunsWithoutWallTimeStillRender) {
  RunData run;
  run.name = "old <run>";
  run.records = parseMetricsJsonl("{\"kind\":\"train\",\"step\":1,\"loss\":2}\n", "m");
  const std::string html = renderReport({run});
  EXPECT_EQ(countOf(html, "<polyline class=\"curve\""), 1u);  // training loss vs step only
  EXPECT_NE(html.find("no data"), std::string::npos);
  EXPECT_NE(html.find("old &lt;run&gt;"), std::string::npos);
  EXPECT_THROW(renderReport({}), ConfigError);
}

TEST(Report, WritesAFileFromRunDirectories) {
  const auto root = fs::path(::testing::TempDir()) / "ringtrain_report_test";
  fs::remove_all(root);
  for (const auto& name : {"a", "b"}) {
    fs::create_directories(root / name);
    std::ofstream(root / name / "metrics.jsonl")
        << "{\"kind\":\"train\",\"step\":1,\"loss\":2,\"time_s\":0.5}\n"
        << "{\"kind\":\"train\",\"step\":2,\"loss\":1,\"time_s\":1.0}\n";
    std::ofstream(root / name / "config.yaml")
        << "train:\n  seed: " << (name[0] == 'a' ? 1 : 2) << "\n";
  }
  const auto out = (root / "report.html").string();
  writeReport({(root / "a").string(), (root / "b").string()}, out);
  std::ifstream in(out);
  std::stringstream html;
  html << in.rdbuf();
  EXPECT_EQ(countOf(html.str(), "<polyline class=\"curve\""), 4u);  // train loss vs step and time
  EXPECT_NE(html.str().find("<code>train.seed</code>"), std::string::npos);
  EXPECT_THROW(writeReport({(root / "missing").string()}, out), DataError);
  fs::remove_all(root);
}

}  // namespace
}  // namespace ringtrain
