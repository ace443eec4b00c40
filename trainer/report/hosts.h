// Where the ranks run. Every rank's host name, gathered once at start-up, goes into the
// start-up output and into the run directory's `hosts` file, from which launch/ringtrain-run
// names the ranks of a host the job lost (MPI's own messages name only the host).
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "collectives/communicator.h"

namespace ringtrain {

// gethostname() of every rank of `comm`, in rank order. Collective over `comm`.
std::vector<std::string> hostOfEveryRank(Communicator& comm, std::chrono::milliseconds timeout);

// "rt-h1 (ranks 0, 1), rt-h2 (rank 2)": the hosts in order of their first rank.
std::string describeHosts(const std::vector<std::string>& hostOfRank);

// One line per host, its name and its ranks: "rt-h1 0 1". Written to a temporary file and
// renamed, so a reader never sees half of it.
void writeHostsFile(const std::string& path, const std::vector<std::string>& hostOfRank);

}  // namespace ringtrain
