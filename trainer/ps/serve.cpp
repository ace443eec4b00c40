#include "trainer/ps/serve.h"

#include <filesystem>

#include "core/error.h"

namespace fs = std::filesystem;

namespace ringtrain::ps {

namespace {

std::string partitionRoot(const std::string& runDir, int server) {
  return (fs::path(runDir) / "ps" / ("server-" + std::to_string(server))).string();
}

void resumePartition(Server& server, const Cluster& cluster, const std::string& resumeDir) {
  const int index = cluster.roles().serverIndex(cluster.worldRank());
  const fs::path main(resumeDir);
  const auto dir = (fs::path(partitionRoot(main.parent_path().parent_path().string(), index)) /
                    "checkpoints" / main.filename())
                       .string();
  const std::string hint =
      "resume with the world size and ps.servers the run was started with (every server's "
      "partition of that step must exist)";
  try {
    verifyCheckpoint(dir);
  } catch (const CheckpointError& e) {
    throw CheckpointError(
        "parameter server " + std::to_string(index) + " cannot resume: " + e.what(), hint,
        cluster.worldRank());
  }
  if (readTrainingState(dir).modelFingerprint != cluster.layout().fingerprint()) {
    throw CheckpointError(
        "partition " + dir + " was written with a different parameter-server layout", hint,
        cluster.worldRank());
  }
  loadCheckpoint(dir, server.partitionModule(), &server.optimizer(), false);
  server.markLoaded();
}

}  // namespace

ServerStats serve(const Config& cfg, const Cluster& cluster, const std::string& runDir,
                  const std::string& resumeDir, const TrainingState& base) {
  const int index = cluster.roles().serverIndex(cluster.worldRank());
  Server server(cfg, cluster.roles(), cluster.layout(), cluster.psComm(), cluster.roleComm());
  // One more than the main store keeps: the partitions of the newest committed checkpoint
  // survive even when a newer partition was written but its main checkpoint was not.
  const int keep = static_cast<int>(cfg.checkpoint.keep_last) + 1;
  const std::string yaml = cfg.toYaml();
  server.setCheckpointWriter([&, index, keep](int64_t step, const torch::nn::Module& partition,
                                              const torch::optim::Optimizer& optimizer) {
    TrainingState state = base;
    state.step = step;
    state.modelFingerprint = cluster.layout().fingerprint();
    CheckpointStore(partitionRoot(runDir, index)).save(partition, optimizer, state, yaml, keep);
  });
  if (!resumeDir.empty()) resumePartition(server, cluster, resumeDir);
  const ServerStats stats = server.serve();

  ReportRow mine{};
  mine[kIsServer] = 1.0;
  mine[kSteps] = static_cast<double>(stats.updates);
  mine[kWall] = stats.wallSeconds;
  mine[kCpu] = stats.cpuSeconds;
  mine[kPushes] = static_cast<double>(stats.pushes);
  mine[kHeld] = static_cast<double>(stats.heldReplies);
  mine[kGap] = static_cast<double>(stats.maxClockGap);
  mine[kSkipped] = static_cast<double>(stats.skipped);
  gatherReport(cluster, mine, cfg.distributed.timeout());
  return stats;
}

}  // namespace ringtrain::ps
