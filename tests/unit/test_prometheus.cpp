// The Prometheus exporter's text (trainer/report/prometheus.h) without its server: gauge
// names from records, the run label escaped, non-finite values as the format spells them,
// and the textfile replaced whole. (tests/e2e/prometheus.sh scrapes a training run.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>
#include <limits>

#include "core/error.h"
#include "trainer/report/prometheus.h"

namespace ringtrain {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

TEST(Prometheus, RecordsBecomeLabelledGauges) {
  PrometheusOptions options;
  options.run = "a\"b\\c";
  options.restarts = 2;
  PrometheusExporter exporter(options);
  exporter.record("train", {{"step", 40}, {"loss", 0.5}, {"sync-wait ms", 1.25}});
  exporter.record("eval", {{"step", 50}, {"test_loss", std::numeric_limits<double>::quiet_NaN()}});
  const std::string text = exporter.render();
  const std::string label = "{run=\"a\\\"b\\\\c\"}";
  EXPECT_NE(text.find("# TYPE ringtrain_train_loss gauge\nringtrain_train_loss" + label + " 0.5\n"),
            std::string::npos)
      << text;
  EXPECT_NE(text.find("ringtrain_train_sync_wait_ms" + label + " 1.25\n"), std::string::npos);
  EXPECT_NE(text.find("ringtrain_step" + label + " 50\n"), std::string::npos);  // the newest
  EXPECT_NE(text.find("ringtrain_eval_test_loss" + label + " NaN\n"), std::string::npos);
  EXPECT_NE(text.find("ringtrain_restarts" + label + " 2\n"), std::string::npos);
  EXPECT_NE(text.find("ringtrain_checkpoint_age_seconds" + label + " "), std::string::npos);
}

TEST(Prometheus, TheTextfileHoldsTheLatestRecords) {
  const auto dir = std::filesystem::temp_directory_path() / "ringtrain_prometheus_test";
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  PrometheusOptions options;
  options.textfile = (dir / "ringtrain.prom").string();
  options.run = "r";
  PrometheusExporter exporter(options);
  exporter.record("train", {{"step", 10}, {"loss", 2.0}});
  exporter.record("train", {{"step", 20}, {"loss", 1.0}});
  const std::string text = readFile(options.textfile);
  EXPECT_NE(text.find("ringtrain_train_loss{run=\"r\"} 1\n"), std::string::npos) << text;
  EXPECT_EQ(text.find("ringtrain_train_loss{run=\"r\"} 2\n"), std::string::npos);
  // Only the file itself: the temporary was renamed over it.
  EXPECT_EQ(std::distance(std::filesystem::directory_iterator(dir),
                          std::filesystem::directory_iterator()),
            1);
  std::filesystem::remove_all(dir);
}

TEST(Prometheus, ABadAddressIsAConfigError) {
  PrometheusOptions options;
  options.port = 9464;
  options.address = "localhost:80";
  EXPECT_THROW(PrometheusExporter{options}, ConfigError);
}

}  // namespace
}  // namespace ringtrain
