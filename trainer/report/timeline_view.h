// An HTML page that draws a merged timeline (trainer/report/timeline.h) as one SVG: a row
// group per rank with its steps, phases, communication thread and buckets. `ringtrain
// timeline RUN_DIR --html FILE` writes it.
#pragma once

#include <string>

namespace ringtrain {

// The page for a merged trace (the JSON text `ringtrain timeline` writes).
std::string timelineHtml(const std::string& traceJson, const std::string& title);

}  // namespace ringtrain
