#include "trainer/ps/layout.h"

#include <algorithm>
#include <climits>
#include <sstream>

#include "core/error.h"
#include "trainer/checkpoint/checkpoint.h"

namespace ringtrain::ps {

namespace {

// A partition travels as one message of MPI_BYTEs whose count is an int; keep room for the
// message header (see ps_protocol.h).
constexpr int64_t kMaxPartitionElements = (static_cast<int64_t>(INT_MAX) - 64) / 4;

int indexIn(const std::vector<int>& ranks, int rank) {
  const auto it = std::find(ranks.begin(), ranks.end(), rank);
  return it == ranks.end() ? -1 : static_cast<int>(it - ranks.begin());
}

}  // namespace

int Roles::serverIndex(int rank) const { return indexIn(servers, rank); }
int Roles::workerIndex(int rank) const { return indexIn(workers, rank); }

Roles assignRoles(int worldSize, int64_t servers, const std::string& placement) {
  const std::string world = std::to_string(worldSize);
  if (servers < 1) {
    throw ConfigError("ps.servers is " + std::to_string(servers) +
                          ": parameter-server mode needs at least one server",
                      "set ps.servers to 1 or more (and below the number of ranks, " + world + ")");
  }
  if (servers >= worldSize) {
    throw ConfigError("ps.servers is " + std::to_string(servers) + " but the job has only " +
                          world + " rank(s): no rank would be left to train as a worker",
                      "set ps.servers below " + world + ", or launch more ranks (mpirun -np " +
                          std::to_string(servers + 1) + " or more)");
  }
  const int k = static_cast<int>(servers);
  std::vector<bool> serves(static_cast<size_t>(worldSize), false);
  if (placement == "last") {
    for (int r = worldSize - k; r < worldSize; ++r) serves[static_cast<size_t>(r)] = true;
  } else if (placement == "first") {
    for (int r = 0; r < k; ++r) serves[static_cast<size_t>(r)] = true;
  } else if (placement == "spread" && worldSize < 2 * k) {
    // Too few ranks for a worker beside every server: some groups would be a lone server,
    // rank 0 among them. Rank 0 stays a worker (it logs and checkpoints): serve from the end.
    for (int r = worldSize - k; r < worldSize; ++r) serves[static_cast<size_t>(r)] = true;
  } else if (placement == "spread") {
    // Group i is ranks [floor(i*W/K), floor((i+1)*W/K)); its last rank serves. With W >= 2K
    // every group has at least two ranks, so rank 0 is always a worker.
    for (int i = 0; i < k; ++i) {
      const int64_t end = static_cast<int64_t>(i + 1) * worldSize / k;
      serves[static_cast<size_t>(end - 1)] = true;
    }
  } else {
    throw ConfigError("unknown ps.placement '" + placement + "'",
                      "use 'last', 'first' or 'spread'");
  }
  Roles roles;
  roles.worldSize = worldSize;
  for (int r = 0; r < worldSize; ++r) {
    (serves[static_cast<size_t>(r)] ? roles.servers : roles.workers).push_back(r);
  }
  return roles;
}

Layout::Layout(std::vector<ParameterInfo> parameters, int servers)
    : parameters_(std::move(parameters)) {
  if (servers < 1) {
    throw ConfigError("cannot partition parameters over " + std::to_string(servers) + " servers",
                      "set ps.servers to 1 or more");
  }
  for (const auto& p : parameters_) total_ += p.numel;
  if (total_ == 0) {
    throw ConfigError("cannot form a parameter-server partition: the model has no parameters",
                      "parameter-server mode needs a model with trainable parameters");
  }
  if (total_ < servers) {
    throw ConfigError("cannot partition " + std::to_string(total_) + " parameter elements over " +
                          std::to_string(servers) + " servers: every server needs at least one",
                      "lower ps.servers to at most " + std::to_string(total_));
  }
  begins_.resize(static_cast<size_t>(servers) + 1);
  for (int s = 0; s <= servers; ++s) begins_[static_cast<size_t>(s)] = s * total_ / servers;
  slices_.resize(static_cast<size_t>(servers));
  int64_t paramBegin = 0;
  for (size_t p = 0; p < parameters_.size(); ++p) {
    const int64_t paramEnd = paramBegin + parameters_[p].numel;
    for (int s = 0; s < servers; ++s) {
      const int64_t lo = std::max(paramBegin, begins_[static_cast<size_t>(s)]);
      const int64_t hi = std::min(paramEnd, begins_[static_cast<size_t>(s) + 1]);
      if (lo >= hi) continue;
      Slice slice;
      slice.parameter = static_cast<int64_t>(p);
      slice.offset = lo - paramBegin;
      slice.length = hi - lo;
      slice.serverOffset = lo - begins_[static_cast<size_t>(s)];
      slices_[static_cast<size_t>(s)].push_back(slice);
    }
    paramBegin = paramEnd;
  }
  for (int s = 0; s < servers; ++s) {
    if (partitionElements(s) > kMaxPartitionElements) {
      throw ConfigError(
          "cannot form a parameter-server partition: server " + std::to_string(s) + " would hold " +
              std::to_string(partitionElements(s)) +
              " elements, more than one message can carry (" +
              std::to_string(kMaxPartitionElements) + ")",
          "raise ps.servers to at least " + std::to_string(total_ / kMaxPartitionElements + 1));
    }
  }
}

int64_t Layout::partitionElements(int server) const {
  const auto s = static_cast<size_t>(server);
  return begins_.at(s + 1) - begins_.at(s);
}

std::vector<int> Layout::serversOf(int64_t parameter) const {
  std::vector<int> owners;
  for (int s = 0; s < numServers(); ++s) {
    for (const auto& slice : slicesOf(s)) {
      if (slice.parameter == parameter) {
        owners.push_back(s);
        break;
      }
    }
  }
  return owners;
}

std::string Layout::describe() const {
  std::ostringstream out;
  for (int s = 0; s < numServers(); ++s) {
    char kib[32];
    std::snprintf(kib, sizeof kib, "%.1f", partitionBytes(s) / 1024.0);
    out << (s ? "; " : "") << "server " << s << ": " << partitionElements(s) << " elements (" << kib
        << " KiB) in " << slicesOf(s).size() << " slice(s)";
  }
  return out.str();
}

std::string Layout::fingerprint() const {
  std::ostringstream text;
  for (const auto& p : parameters_) text << p.name << ':' << p.numel << ';';
  for (const int64_t begin : begins_) text << begin << ',';
  return stableHash(text.str());
}

std::vector<ParameterInfo> parameterInfo(const torch::nn::Module& module) {
  std::vector<ParameterInfo> info;
  for (const auto& p : module.named_parameters()) {
    if (p.value().scalar_type() != torch::kFloat32) {
      throw ConfigError("cannot form a parameter-server partition: parameter '" + p.key() +
                            "' is " + std::string(c10::toString(p.value().scalar_type())) +
                            ", servers hold float32 only",
                        "keep the model's parameters in float32 (use train.precision for "
                        "lower-precision compute), or use distributed.mode: allreduce");
    }
    info.push_back({p.key(), p.value().numel()});
  }
  return info;
}

}  // namespace ringtrain::ps
