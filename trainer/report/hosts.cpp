#include "trainer/report/hosts.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <utility>

#include "core/error.h"

namespace ringtrain {

namespace {

constexpr int64_t kNameBytes = 256;  // HOST_NAME_MAX (64 on Linux), with room to spare

// The hosts in order of their first rank, each with its ranks.
std::vector<std::pair<std::string, std::vector<int>>> ranksByHost(
    const std::vector<std::string>& hostOfRank) {
  std::vector<std::pair<std::string, std::vector<int>>> hosts;
  for (int r = 0; r < static_cast<int>(hostOfRank.size()); ++r) {
    const auto& name = hostOfRank[static_cast<size_t>(r)];
    auto found = std::find_if(hosts.begin(), hosts.end(),
                              [&](const auto& host) { return host.first == name; });
    if (found == hosts.end()) {
      hosts.push_back({name, {}});
      found = hosts.end() - 1;
    }
    found->second.push_back(r);
  }
  return hosts;
}

}  // namespace

std::vector<std::string> hostOfEveryRank(Communicator& comm, std::chrono::milliseconds timeout) {
  auto mine = torch::zeros({kNameBytes}, torch::kUInt8);
  auto* name = reinterpret_cast<char*>(mine.data_ptr<uint8_t>());
  if (gethostname(name, kNameBytes - 1) != 0) std::snprintf(name, kNameBytes, "unknown");
  auto all = torch::empty({comm.size() * kNameBytes}, torch::kUInt8);
  comm.allgather(mine, all)->wait(timeout);
  std::vector<std::string> hosts;
  const auto* bytes = reinterpret_cast<const char*>(all.data_ptr<uint8_t>());
  for (int r = 0; r < comm.size(); ++r) hosts.emplace_back(bytes + r * kNameBytes);
  return hosts;
}

std::string describeHosts(const std::vector<std::string>& hostOfRank) {
  std::string text;
  for (const auto& [host, ranks] : ranksByHost(hostOfRank)) {
    if (!text.empty()) text += ", ";
    text += host + (ranks.size() == 1 ? " (rank " : " (ranks ");
    for (size_t i = 0; i < ranks.size(); ++i) {
      text += (i ? ", " : "") + std::to_string(ranks[i]);
    }
    text += ")";
  }
  return text;
}

void writeHostsFile(const std::string& path, const std::vector<std::string>& hostOfRank) {
  const std::string temporary = path + ".tmp";
  {
    std::ofstream out(temporary);
    for (const auto& [host, ranks] : ranksByHost(hostOfRank)) {
      out << host;
      for (int r : ranks) out << ' ' << r;
      out << '\n';
    }
    if (!out) throw Error("cannot write " + temporary, "check the run directory's file system");
  }
  if (std::rename(temporary.c_str(), path.c_str()) != 0) {
    throw Error("cannot rename " + temporary + " to " + path, "check the run directory");
  }
}

}  // namespace ringtrain
