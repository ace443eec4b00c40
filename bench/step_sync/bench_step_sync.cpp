// What averaging one gradient bucket costs inside a training step, on one node.
//
//   mpirun -np N bench_step_sync [--bytes B1,B2,...] [--repeats R] [--touch-bytes B]
//
// bench_allreduce measures bandwidth on buffers that stay in cache from one call to the next.
// In a training step the bucket was just written by backward, and the rest of the step has
// walked megabytes through the caches since the last all-reduce. This benchmark reproduces
// that around every timed call: each rank touches --touch-bytes of other memory (default
// 4 MiB, about one fashion_mlp step), all ranks meet at a barrier, the clock starts, each
// rank writes its bucket (backward's stores) and then averages it the way the trainer does.
// Rows, each the median over R repeats of the slowest rank:
//   write-only - the bucket's stores alone: what a single rank pays.
//   ring       - the 1/N scale pass, then ringtrain's ring all-reduce (messages).
//   mpi        - the same with MPI_Allreduce.
//   shm        - the shared-memory all-reduce, with the 1/N scale folded into its reduction, on
//                a bucket that lives in an MPI shared-memory window: what the ring backend
//                does on one node (distributed.shared_memory, ReduceOp::Average). Its result
//                is checked to be bitwise the ring's.
// "sync" is the row minus write-only: the synchronisation's own cost. Default sizes:
// fashion_mlp's 940,584-byte gradient (its one bucket), fashion_cnn's 1.7 MB and 4 MiB.
#include <mpi.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "collectives/mpi_main.h"
#include "collectives/ring_allreduce.h"
#include "collectives/shm_allreduce.h"
#include "core/error.h"

namespace ringtrain {
namespace {

using Clock = std::chrono::steady_clock;

struct Args {
  std::vector<std::int64_t> bytes = {940584, 1700000, 4 << 20};
  int repeats = 200;
  std::int64_t touchBytes = 4 << 20;
};

Args parseArgs(int argc, char** argv) {
  Args args;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h" || i + 1 >= argc) {
      throw ConfigError("usage: bench_step_sync [--bytes B1,B2] [--repeats R] [--touch-bytes B]");
    }
    const std::string value = argv[++i];
    if (flag == "--bytes") {
      args.bytes.clear();
      std::stringstream stream(value);
      for (std::string part; std::getline(stream, part, ',');)
        args.bytes.push_back(std::stoll(part));
    } else if (flag == "--repeats") {
      args.repeats = std::max(3, std::stoi(value));
    } else if (flag == "--touch-bytes") {
      args.touchBytes = std::stoll(value);
    } else {
      throw ConfigError("unknown flag " + flag, "run with --help");
    }
  }
  return args;
}

enum class Row { WriteOnly, Ring, Mpi, Shm };
constexpr const char* kRowNames[] = {"write-only", "ring", "mpi", "shm"};

class StepSync {
 public:
  StepSync(const MpiComm& world, const MpiComm& node, std::int64_t count)
      : world_(world),
        count_(count),
        local_(static_cast<std::size_t>(count)),
        gradients_(static_cast<std::size_t>(count)),
        window_(node.get(), count * 4) {
    for (std::int64_t i = 0; i < count; ++i) {
      gradients_[static_cast<std::size_t>(i)] = static_cast<float>(i % 97) * 0.01f + world.rank();
    }
  }

  float* bucket(Row row) {
    return row == Row::Shm ? reinterpret_cast<float*>(window_.part(window_.rank())) : local_.data();
  }

  // Backward's stores into the bucket, then the trainer's averaging.
  void step(Row row) {
    float* data = bucket(row);
    std::copy(gradients_.begin(), gradients_.end(), data);
    if (row == Row::WriteOnly) return;
    const double scale = 1.0 / world_.size();  // ReduceOp::Average, as the communicator does it
    if (row == Row::Shm) {
      shmAllreduce(window_, 0, count_, RingDtype::Float32, workspace_, nullptr, scale);
      return;
    }
    scaleInPlace(data, count_, RingDtype::Float32, scale);
    if (row == Row::Ring) {
      RingOptions options;
      options.workspace = &workspace_;
      ringAllreduce(data, count_, RingDtype::Float32, world_.get(), options);
    } else if (row == Row::Mpi) {
      checkMpi(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count_), MPI_FLOAT, MPI_SUM,
                             world_.get()),
               "MPI_Allreduce", world_.rank());
    }
  }

 private:
  const MpiComm& world_;
  std::int64_t count_;
  std::vector<float> local_;
  std::vector<float> gradients_;  // what this rank's backward produces
  SharedWindow window_;
  RingWorkspace workspace_;
};

int benchMain(int argc, char** argv) {
  const Args args = parseArgs(argc, argv);
  MpiComm world(MPI_COMM_WORLD);
  const int rank = world.rank();
  const MpiComm node = nodeCommOf(world.get());
  if (node.size() != world.size()) throw ConfigError("bench_step_sync needs all ranks on one node");

  std::vector<float> touch(static_cast<std::size_t>(args.touchBytes / 4));
  if (rank == 0) {
    std::printf("# np %d, %d repeats, %lld bytes touched before each; slowest rank, us\n",
                world.size(), args.repeats, static_cast<long long>(args.touchBytes));
    std::printf("%10s %-10s %10s %8s %9s %9s\n", "bytes", "impl", "median_us", "p90_us", "sync_us",
                "ring/impl");
  }
  for (const std::int64_t bytes : args.bytes) {
    StepSync bench(world, node, bytes / 4);
    std::vector<double> medians;
    std::vector<float> ringResult;
    for (const Row row : {Row::WriteOnly, Row::Ring, Row::Mpi, Row::Shm}) {
      std::vector<double> times;
      for (int repeat = 0; repeat < args.repeats; ++repeat) {
        for (std::size_t i = 0; i < touch.size(); i += 16) touch[i] += 1.0f;
        checkMpi(MPI_Barrier(world.get()), "MPI_Barrier", rank);
        const auto start = Clock::now();
        bench.step(row);
        double us = std::chrono::duration<double, std::micro>(Clock::now() - start).count();
        checkMpi(MPI_Allreduce(MPI_IN_PLACE, &us, 1, MPI_DOUBLE, MPI_MAX, world.get()),
                 "MPI_Allreduce", rank);
        times.push_back(us);
      }
      if (row == Row::Ring) ringResult.assign(bench.bucket(row), bench.bucket(row) + bytes / 4);
      std::sort(times.begin(), times.end());
      medians.push_back(times[times.size() / 2]);
      const double sync = medians.back() - medians[0];
      const double ringSync = medians.size() > 1 ? medians[1] - medians[0] : 0;
      if (rank == 0) {
        std::printf("%10lld %-10s %10.1f %8.1f %9.1f", static_cast<long long>(bytes),
                    kRowNames[static_cast<int>(row)], medians.back(), times[times.size() * 9 / 10],
                    sync);
        if (row != Row::WriteOnly) std::printf(" %8.2fx", ringSync / sync);
        std::printf("\n");
      }
    }
    if (!std::equal(ringResult.begin(), ringResult.end(), bench.bucket(Row::Shm))) {
      throw CommError("the shared-memory all-reduce differs from the ring's result", {}, rank);
    }
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace ringtrain

int main(int argc, char** argv) {
  return ringtrain::runMpiMain(
      &argc, &argv, [&](ringtrain::MpiContext&) { return ringtrain::benchMain(argc, argv); });
}
