// The per-rank timeline (trainer/report/timeline.h): the train.timeline syntax, what a rank
// records inside and outside its range, the file it writes, the merge of the ranks' files
// into one trace and its drawing, and the errors of a missing or damaged timeline.
// (tests/e2e/timeline.sh traces real runs.)
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "core/error.h"
#include "trainer/report/timeline.h"
#include "trainer/report/timeline_view.h"

namespace ringtrain {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;
using namespace std::chrono_literals;

fs::path freshDir(const std::string& name) {
  const fs::path dir = fs::temp_directory_path() / ("ringtrain_timeline_" + name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

json readJson(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

TEST(Timeline, ParsesStepRanges) {
  EXPECT_FALSE(parseTimelineSteps("").has_value());
  const auto range = parseTimelineSteps("steps 3-5");
  ASSERT_TRUE(range.has_value());
  EXPECT_EQ(range->first, 3);
  EXPECT_EQ(range->last, 5);
  EXPECT_TRUE(range->contains(3) && range->contains(5));
  EXPECT_FALSE(range->contains(2) || range->contains(6));
  EXPECT_EQ(parseTimelineSteps(" steps 7 ")->last, 7);
  for (const char* bad : {"3-5", "steps 5-3", "steps 0-2", "steps x", "steps 1-2-3", "all"}) {
    try {
      parseTimelineSteps(bad);
      FAIL() << "accepted '" << bad << "'";
    } catch (const ConfigError& e) {
      EXPECT_NE(std::string(e.what()).find("train.timeline"), std::string::npos) << e.what();
    }
  }
}

// Two ranks trace steps 2-3 of 4: nothing of step 1 or 4, every span of 2 and 3; rank 0's file
// is written when step 4 begins, rank 1's by its destructor; an earlier attempt's file of a
// rank the world no longer has is removed; the merge has both ranks' tracks.
TEST(Timeline, RecordsItsRangeAndMergesTheRanks) {
  const fs::path run = freshDir("merge");
  const fs::path dir = run / "timeline";
  fs::create_directories(dir);
  std::ofstream(dir / "rank-7.json") << "{\"traceEvents\":[]}";  // of a 8-rank attempt
  {
    Timeline rank0(dir.string(), 0, 2, "hostA", {2, 3});
    Timeline rank1(dir.string(), 1, 2, "hostB", {2, 3});
    EXPECT_FALSE(fs::exists(dir / "rank-7.json"));
    for (int64_t step = 1; step <= 4; ++step) {
      for (Timeline* t : {&rank0, &rank1}) {
        t->beginStep(step);
        EXPECT_EQ(t->recording(), step == 2 || step == 3) << "step " << step;
        { const Timeline::Scope forward(t, "forward"); }
        const auto now = Timeline::Clock::now();
        t->span("bucket 1 all-reduce", Timeline::Track::Communication, now, now + 1ms,
                {{"bytes", 64}});
        t->asyncSpan("bucket 1 all-reduce", 0, now - 1ms, now + 1ms, {{"bytes", 64}});
        t->stepDone();
      }
      if (step == 4) {
        EXPECT_TRUE(fs::exists(rank0.path())) << "not written when the range ended";
      }
    }
    const Timeline::Scope none(nullptr, "eval");  // a run without a timeline
  }
  const json file0 = readJson(dir / "rank-0.json");
  std::multiset<std::string> names;
  for (const json& e : file0["traceEvents"]) {
    EXPECT_EQ(e["pid"], 0);
    if (e["ph"] != "M") {
      names.insert(e["name"].get<std::string>() + "/" + e["ph"].get<std::string>());
      if (e.contains("args")) {  // (an async span's end has none)
        const int64_t step = e.at("args").at("step").get<int64_t>();
        EXPECT_TRUE(step == 2 || step == 3) << e;
      }
    }
  }
  EXPECT_EQ(names.count("step 2/X"), 1u);
  EXPECT_EQ(names.count("step 3/X"), 1u);
  EXPECT_EQ(names.count("step 1/X") + names.count("step 4/X"), 0u);
  EXPECT_EQ(names.count("forward/X"), 2u);
  EXPECT_EQ(names.count("bucket 1 all-reduce/X"), 2u);
  EXPECT_EQ(names.count("bucket 1 all-reduce/b"), 2u);
  EXPECT_EQ(names.count("bucket 1 all-reduce/e"), 2u);
  EXPECT_EQ(file0["otherData"]["host"], "hostA");

  const fs::path merged = run / "timeline.json";
  const fs::path page = run / "timeline.html";
  const MergedTimeline result = mergeTimelines(run.string(), merged.string(), page.string());
  EXPECT_EQ(result.ranks, 2);
  const json trace = readJson(merged);
  EXPECT_EQ(static_cast<int64_t>(trace["traceEvents"].size()), result.events);
  std::set<int> pids;
  for (const json& e : trace["traceEvents"]) pids.insert(e["pid"].get<int>());
  EXPECT_EQ(pids, (std::set<int>{0, 1}));
  std::ifstream in(page);
  const std::string html((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(html.find("2 rank(s), 16 spans"), std::string::npos) << html.substr(0, 600);
  EXPECT_NE(html.find("rank 1 (hostB)"), std::string::npos);
  EXPECT_NE(html.find("<rect class=\"bucket\""), std::string::npos);
}

TEST(Timeline, MergeNamesAMissingOrDamagedTimeline) {
  const fs::path run = freshDir("damaged");
  EXPECT_THROW(mergeTimelines(run.string(), (run / "t.json").string()), UsageError);
  fs::create_directories(run / "timeline");
  EXPECT_THROW(mergeTimelines(run.string(), (run / "t.json").string()), UsageError);
  std::ofstream(run / "timeline" / "rank-0.json") << "{\"traceEvents\":[{\"pid\":0";  // cut short
  try {
    mergeTimelines(run.string(), (run / "t.json").string());
    FAIL() << "a cut-short trace was merged";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("rank-0.json"), std::string::npos) << e.what();
  }
  std::ofstream(run / "timeline" / "rank-0.json") << "{\"traceEvents\":[{\"pid\":3}]}";
  EXPECT_THROW(mergeTimelines(run.string(), (run / "t.json").string()), DataError);
  EXPECT_FALSE(fs::exists(run / "t.json"));
}

}  // namespace
}  // namespace ringtrain
