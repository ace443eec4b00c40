// Parameter-server layout: which ranks serve and which parameter elements each server owns.
//
// Roles. Of W ranks, K = ps.servers are servers and the other W - K are workers.
// ps.placement picks the servers: "last" (ranks W-K .. W-1, the default: rank 0 stays a
// worker and prints the progress), "first" (ranks 0 .. K-1) or "spread" (server i is the last
// rank of the i-th of K contiguous, near-equal groups, so that with one group per node every
// node hosts one server). Workers are numbered 0 .. W-K-1 in rank order; data is sharded
// over workers only.
//
// Partition. Think of every parameter flattened and concatenated in registration order into
// one vector of T elements. Server s owns the contiguous range
//   [floor(s * T / K), floor((s + 1) * T / K))
// so partitions differ by at most one element (balanced by bytes: every parameter is
// float32). A parameter crossing a range boundary is cut into slices, one per server it
// touches; a layer larger than T / K is therefore spread over several servers instead of
// making one server the bottleneck. Each server keeps its range as one flat tensor; a
// worker packs and unpacks its parameters through the slices.
//
// Because backward produces the gradients of the last layers first and the last layers live
// on the last servers, a worker can push to the last server while backward still runs.
#pragma once

#include <torch/torch.h>

#include <cstdint>
#include <string>
#include <vector>

namespace ringtrain::ps {

struct Roles {
  int worldSize = 0;
  std::vector<int> servers;  // world ranks of the servers, ascending
  std::vector<int> workers;  // world ranks of the workers, ascending

  int numServers() const { return static_cast<int>(servers.size()); }
  int numWorkers() const { return static_cast<int>(workers.size()); }
  bool isServer(int rank) const { return serverIndex(rank) >= 0; }
  // Position of `rank` among the servers / workers, or -1.
  int serverIndex(int rank) const;
  int workerIndex(int rank) const;
};

// Throws ConfigError when servers < 1, servers >= worldSize (no worker left) or the
// placement is unknown.
Roles assignRoles(int worldSize, int64_t servers, const std::string& placement);

// The part of one parameter that lives on one server.
struct Slice {
  int64_t parameter = 0;     // index into the parameter list
  int64_t offset = 0;        // first element within the flattened parameter
  int64_t length = 0;        // elements
  int64_t serverOffset = 0;  // first element within the server's partition
};

struct ParameterInfo {
  std::string name;
  int64_t numel = 0;
};

class Layout {
 public:
  // Throws ConfigError when the partition cannot be formed: no servers, no parameter
  // elements, fewer elements than servers, or a partition too large for one MPI message.
  Layout(std::vector<ParameterInfo> parameters, int servers);

  int numServers() const { return static_cast<int>(slices_.size()); }
  const std::vector<ParameterInfo>& parameters() const { return parameters_; }
  int64_t totalElements() const { return total_; }
  // Slices of server `server`, ordered by serverOffset; they tile [0, partitionElements).
  const std::vector<Slice>& slicesOf(int server) const { return slices_.at(server); }
  int64_t partitionElements(int server) const;
  int64_t partitionBytes(int server) const { return partitionElements(server) * 4; }
  // Servers holding a piece of `parameter`, ascending.
  std::vector<int> serversOf(int64_t parameter) const;
  // "server 0: 117 632 elements (459.5 KiB) in 3 slices; ..." for the start-up log.
  std::string describe() const;
  // Hash of the parameter names, sizes and the cut points: equal layouts, equal strings.
  std::string fingerprint() const;

 private:
  std::vector<ParameterInfo> parameters_;
  std::vector<std::vector<Slice>> slices_;
  std::vector<int64_t> begins_;  // first global element of each server, plus T at the end
  int64_t total_ = 0;
};

// Name and size of every parameter of `module`, in registration order. Throws ConfigError
// naming a parameter that is not float32 (servers keep one float32 vector).
std::vector<ParameterInfo> parameterInfo(const torch::nn::Module& module);

}  // namespace ringtrain::ps
