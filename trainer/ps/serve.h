// A parameter server's part of a run (distributed.mode: ps): serves its partition until
// every worker is done, saving it into its own checkpoint store whenever the workers meet
// for a checkpoint, then sends its figures to the end-of-run report.
//
// Checkpoints of a PS run:
//   <run>/ps/server-<i>/checkpoints/step-N   written by server i first: its partition
//                                            ("partition" parameter) and optimizer state
//   <run>/checkpoints/step-N                 written by the first worker afterwards: the
//                                            gathered full model, so eval/export/predict
//                                            read it unchanged; its MANIFEST commits the
//                                            whole checkpoint
// Resuming from main checkpoint step-N loads the partitions of the same step; it needs the
// world size and ps.servers the run was started with (the layout fingerprint is checked).
#pragma once

#include <string>

#include "trainer/checkpoint/checkpoint.h"
#include "trainer/config/config.h"
#include "trainer/ps/cluster.h"
#include "trainer/ps/server.h"

namespace ringtrain::ps {

// Collective over every rank of the job, like the workers' loop. `resumeDir` is the main
// checkpoint the workers resume from (empty: a fresh run); `base` carries the run's model
// name, world size and config hash into the partitions' checkpoints.
ServerStats serve(const Config& cfg, const Cluster& cluster, const std::string& runDir,
                  const std::string& resumeDir, const TrainingState& base);

}  // namespace ringtrain::ps
