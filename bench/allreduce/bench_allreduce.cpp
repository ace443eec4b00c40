// All-reduce bandwidth: ringtrain's ring vs MPI_Allreduce vs LibTorch's c10d Gloo, float32
// sum, sizes 4 KiB .. 256 MiB in x4 steps, plus a one-process memcpy row as the ceiling.
// `shm` is ringtrain's shared-memory all-reduce (what the ring backend uses for gradient
// buckets when every rank is on one node), on a buffer in an MPI shared-memory window.
// `hier` is the hierarchical all-reduce the ring backend uses for them across nodes (shared
// memory inside a node, rings between nodes); on one machine, RINGTRAIN_RANKS_PER_NODE=k
// makes groups of k ranks count as nodes.
//
//   mpirun -np N bench_allreduce [--csv FILE] [--min-bytes B] [--max-bytes B] [--repeats R]
//                                [--impls ring,shm,hier,mpi,gloo] [--segment-bytes B]
//                                [--slots K]
//
// Each repeat runs ring and MPI_Allreduce once, back to back (interleaved, so a noisy
// neighbour on the machine slows both alike); Gloo is measured after them, in a second sweep
// over the sizes (its process group keeps a thread busy; see Bench::startGloo). A run's time is the
// slowest rank's, and the table reports the median over repeats. algbw = S / t and busbw = algbw *
// 2(n-1)/n, as in nccl-tests (see docs/algorithms.md). Sizes above 16 MiB get fewer repeats.
#include <mpi.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "collectives/hierarchical_allreduce.h"
#include "collectives/mpi_main.h"
#include "collectives/ring_allreduce.h"
#include "collectives/shm_allreduce.h"
#include "core/error.h"

#ifdef RINGTRAIN_BENCH_GLOO
#include <torch/csrc/distributed/c10d/FileStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#endif

namespace ringtrain {
namespace {

struct Args {
  std::string csv;
  std::int64_t minBytes = 4 << 10;
  std::int64_t maxBytes = std::int64_t{256} << 20;
  int repeats = 20;
  std::vector<std::string> impls = {"ring", "shm", "mpi", "gloo"};  // hier: on request
  RingOptions ring;
  bool segmentBytesGiven = false;  // else the ring's segments are ringtrain's choice
  bool help = false;               // --help: print the usage and run nothing
};

constexpr const char* kUsage =
    "usage: mpirun -np N bench_allreduce [--csv FILE] [--min-bytes B] [--max-bytes B] "
    "[--repeats R] [--impls ring,shm,hier,mpi,gloo] [--segment-bytes B] [--slots K]";

std::vector<std::string> splitCommas(const std::string& text) {
  std::vector<std::string> parts;
  std::stringstream stream(text);
  for (std::string part; std::getline(stream, part, ',');) parts.push_back(part);
  return parts;
}

Args parseArgs(int argc, char** argv) {
  Args args;
  const std::map<std::string, std::function<void(const std::string&)>> setters{
      {"--csv", [&](const std::string& v) { args.csv = v; }},
      {"--min-bytes", [&](const std::string& v) { args.minBytes = std::stoll(v); }},
      {"--max-bytes", [&](const std::string& v) { args.maxBytes = std::stoll(v); }},
      {"--repeats", [&](const std::string& v) { args.repeats = std::max(1, std::stoi(v)); }},
      {"--impls", [&](const std::string& v) { args.impls = splitCommas(v); }},
      {"--segment-bytes",
       [&](const std::string& v) {
         args.ring.segmentBytes = std::stoll(v);
         args.segmentBytesGiven = true;
       }},
      {"--slots", [&](const std::string& v) { args.ring.slots = std::stoi(v); }},
  };
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      args.help = true;
      return args;
    }
    const auto setter = setters.find(flag);
    if (setter == setters.end()) throw ConfigError("unknown flag " + flag, kUsage);
    if (i + 1 >= argc) throw ConfigError("flag " + flag + " needs a value", kUsage);
    setter->second(argv[++i]);
  }
  return args;
}

// Waits for all ranks without spinning, so idle ranks leave the CPU to the memcpy row.
void sleepyBarrier(MPI_Comm comm) {
  MPI_Request request = MPI_REQUEST_NULL;
  checkMpi(MPI_Ibarrier(comm, &request), "MPI_Ibarrier");
  for (int done = 0;;) {
    checkMpi(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
    if (done) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

#ifdef RINGTRAIN_BENCH_GLOO
// c10d's Gloo process group over TCP, rendezvous through a FileStore whose path rank 0 picks
// and broadcasts over MPI (across hosts the temporary directory must be shared, as it is on
// the test cluster of tests/cluster/). On loopback when every rank is on one node, else on
// the address of this host's name, as torchrun's gloo binds to.
class GlooGroup {
 public:
  explicit GlooGroup(const MpiComm& comm) {
    const bool oneNode = nodeCommOf(comm.get()).size() == comm.size();
    std::string host = "127.0.0.1";
    if (!oneNode) {
      char name[256] = {};
      if (gethostname(name, sizeof name - 1) != 0) throw CommError("gethostname failed");
      host = name;
    }
    std::string dir(512, '\0');
    if (comm.rank() == 0) {
      std::string pattern = std::filesystem::temp_directory_path() / "ringtrain-gloo-XXXXXX";
      if (mkdtemp(pattern.data()) == nullptr) throw CommError("mkdtemp failed for the store");
      std::copy(pattern.begin(), pattern.end(), dir.begin());
    }
    checkMpi(MPI_Bcast(dir.data(), 512, MPI_CHAR, 0, comm.get()), "MPI_Bcast");
    dir_ = dir.c_str();
    auto store = c10::make_intrusive<c10d::FileStore>(dir_ + "/store", comm.size());
    auto options = c10d::ProcessGroupGloo::Options::create();
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host));
    group_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store, comm.rank(), comm.size(), options);
    rank_ = comm.rank();
    comm_ = comm.get();
  }
  ~GlooGroup() {
    group_.reset();
    // Every rank's FileStore (which deletes its file as the last one leaves) must be gone
    // before rank 0 removes the directory; what is left to remove then may be nothing.
    MPI_Barrier(comm_);
    std::error_code ignored;
    if (rank_ == 0) std::filesystem::remove_all(dir_, ignored);
  }
  void allreduce(float* data, std::int64_t count) {
    std::vector<at::Tensor> tensors{at::from_blob(data, {count}, at::kFloat)};
    group_->allreduce(tensors)->wait();
  }

 private:
  std::string dir_;
  int rank_ = 0;
  MPI_Comm comm_ = MPI_COMM_NULL;  // borrowed from the MpiComm, which outlives this group
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group_;
};
#endif

struct Result {
  double seconds = 0;
  double algbw = 0;  // GB/s
  double busbw = 0;  // GB/s
};

double median(std::vector<double> values) {
  std::sort(values.begin(), values.end());
  const std::size_t mid = values.size() / 2;
  return values.size() % 2 ? values[mid] : (values[mid - 1] + values[mid]) / 2;
}

int repeatsFor(std::int64_t bytes, int repeats) {
  const std::int64_t big = std::int64_t{16} << 20;
  if (bytes <= big) return repeats;
  return std::max<int>(5, static_cast<int>(repeats * big / bytes));
}

class Bench {
 public:
  Bench(const Args& args, const MpiComm& comm) : args_(args), comm_(comm) {
    const auto hosts = hostNamesOf(comm_.get());
    spansHosts_ = std::any_of(hosts.begin(), hosts.end(),
                              [&](const std::string& h) { return h != hosts.front(); });
    for (const auto& impl : args_.impls) {
      if (impl == "gloo") {
#ifdef RINGTRAIN_BENCH_GLOO
        impls_.push_back(impl);
#else
        if (comm_.rank() == 0) std::printf("# gloo: not built in (see bench CMake output)\n");
#endif
      } else if (impl == "ring" || impl == "mpi") {
        impls_.push_back(impl);
      } else if (impl == "shm") {
        node_ = nodeCommOf(comm_.get());
        if (node_.size() == comm_.size()) {
          impls_.push_back(impl);
        } else if (comm_.rank() == 0) {
          std::printf("# shm: left out, the ranks are not all on one node\n");
        }
      } else if (impl == "hier") {
        addHierarchical();
      } else {
        throw ConfigError("unknown impl '" + impl + "'", "valid: ring, shm, hier, mpi, gloo");
      }
    }
  }

  // `hier` needs several nodes with the same number (> 1) of ranks each.
  void addHierarchical() {
    node_ = nodeCommOf(comm_.get());
    std::optional<MpiComm> across = acrossCommOf(comm_.get(), node_);
    if (!across) {
      if (comm_.rank() == 0) {
        std::printf(
            "# hier: left out, it needs several nodes of equal size > 1 "
            "(on one machine: RINGTRAIN_RANKS_PER_NODE)\n");
      }
      return;
    }
    across_ = std::move(*across);
    impls_.push_back("hier");
  }

  // Created only after ring and MPI_Allreduce were measured: a Gloo process group keeps a
  // thread spinning (about half a core per rank, seen in `top -H`), which slowed ring and
  // MPI_Allreduce by ~30% at 1 MiB while it existed.
  void startGloo() {
#ifdef RINGTRAIN_BENCH_GLOO
    if (!gloo_) gloo_ = std::make_unique<GlooGroup>(comm_);
#endif
  }

  const std::vector<std::string>& impls() const { return impls_; }
  bool has(const std::string& impl) const {
    return std::find(impls_.begin(), impls_.end(), impl) != impls_.end();
  }

  // Where `impl` finds its data: shm works on the window, the others on `buffer`.
  float* dataOf(const std::string& impl, std::vector<float>& buffer) {
    if (impl == "shm" || impl == "hier") {
      return reinterpret_cast<float*>(window_->part(window_->rank()));
    }
    return buffer.data();
  }

  void run(const std::string& impl, float* data, std::int64_t count) {
    if (impl == "shm") {
      shmAllreduce(*window_,
                   reinterpret_cast<unsigned char*>(data) - window_->part(window_->rank()), count,
                   RingDtype::Float32, workspace_);
    } else if (impl == "hier") {
      hierarchicalAllreduce(*window_,
                            reinterpret_cast<unsigned char*>(data) - window_->part(window_->rank()),
                            count, RingDtype::Float32, across_.get(), workspace_);
    } else if (impl == "ring") {
      RingOptions options = args_.ring;
      // As ringtrain's communicator picks it, unless --segment-bytes says otherwise.
      if (!args_.segmentBytesGiven && spansHosts_ && comm_.size() == 2) {
        options.segmentBytes = kSegmentBytesTwoHostRing;
      }
      options.workspace = &workspace_;
      ringAllreduce(data, count, RingDtype::Float32, comm_.get(), options);
    } else if (impl == "mpi") {
      checkMpi(MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(count), MPI_FLOAT, MPI_SUM,
                             comm_.get()),
               "MPI_Allreduce");
#ifdef RINGTRAIN_BENCH_GLOO
    } else if (impl == "gloo") {
      gloo_->allreduce(data, count);
#endif
    }
  }

  // Checks each implementation's sum once, so a fast number cannot come from a wrong result.
  void verify(std::vector<float>& buffer, const std::vector<std::string>& impls) {
    const int n = comm_.size();
    for (const auto& impl : impls) {
      float* data = dataOf(impl, buffer);
      std::fill(data, data + buffer.size(), static_cast<float>(comm_.rank() + 1));
      run(impl, data, static_cast<std::int64_t>(buffer.size()));
      const float want = static_cast<float>(n * (n + 1) / 2);
      const auto bad =
          std::count_if(data, data + buffer.size(), [&](float v) { return v != want; });
      if (bad) {
        throw CommError(impl + " all-reduce of " + std::to_string(buffer.size()) + " floats gave " +
                            std::to_string(bad) + " wrong elements",
                        {}, comm_.rank());
      }
    }
    for (const auto& impl : impls) {  // zeros keep repeated sums finite
      std::fill(dataOf(impl, buffer), dataOf(impl, buffer) + buffer.size(), 0.0f);
    }
  }

  // Measures `impls` (interleaved) at one size.
  std::map<std::string, Result> measure(std::int64_t bytes, const std::vector<std::string>& impls) {
    const std::int64_t count = bytes / 4;
    std::vector<float> buffer(static_cast<std::size_t>(count));
    window_.reset();
    if (std::find(impls.begin(), impls.end(), "shm") != impls.end() ||
        std::find(impls.begin(), impls.end(), "hier") != impls.end()) {
      window_ = std::make_unique<SharedWindow>(node_.get(), bytes);
    }
    verify(buffer, impls);
    for (const auto& impl : impls) run(impl, dataOf(impl, buffer), count);  // warm-up
    std::map<std::string, std::vector<double>> times;
    const int repeats = repeatsFor(bytes, args_.repeats);
    for (int r = 0; r < repeats; ++r) {
      for (const auto& impl : impls) {
        checkMpi(MPI_Barrier(comm_.get()), "MPI_Barrier");
        const auto start = std::chrono::steady_clock::now();
        run(impl, dataOf(impl, buffer), count);
        double local =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        double slowest = 0;
        checkMpi(MPI_Allreduce(&local, &slowest, 1, MPI_DOUBLE, MPI_MAX, comm_.get()),
                 "MPI_Allreduce");
        times[impl].push_back(slowest);
      }
    }
    std::map<std::string, Result> results;
    const int n = comm_.size();
    for (const auto& impl : impls) {
      Result result;
      result.seconds = median(times[impl]);
      result.algbw = static_cast<double>(bytes) / result.seconds / 1e9;
      result.busbw = result.algbw * 2.0 * (n - 1) / n;
      results[impl] = result;
    }
    return results;
  }

  // One process copies while the others sleep: bytes read + bytes written per second.
  Result measureMemcpy(std::int64_t bytes) {
    Result result;
    sleepyBarrier(comm_.get());
    if (comm_.rank() == 0) {
      std::vector<unsigned char> src(static_cast<std::size_t>(bytes), 1);
      std::vector<unsigned char> dst(static_cast<std::size_t>(bytes), 0);
      std::vector<double> times;
      for (int r = 0; r <= repeatsFor(bytes, args_.repeats); ++r) {
        const auto start = std::chrono::steady_clock::now();
        std::memcpy(dst.data(), src.data(), src.size());
        const double t =
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
        if (r > 0) times.push_back(t);  // the first touches the pages
      }
      result.seconds = median(times);
      result.algbw = result.busbw = 2.0 * static_cast<double>(bytes) / result.seconds / 1e9;
    }
    sleepyBarrier(comm_.get());
    return result;
  }

 private:
  const Args& args_;
  const MpiComm& comm_;
  bool spansHosts_ = false;  // the ranks are on several hosts (host names, as ringtrain sees)
  std::vector<std::string> impls_;
  RingWorkspace workspace_;
  MpiComm node_{MPI_COMM_SELF};           // the node's ranks, for shm and hier
  MpiComm across_{MPI_COMM_SELF};         // one rank per node, for hier
  std::unique_ptr<SharedWindow> window_;  // shm's buffer at the size being measured
#ifdef RINGTRAIN_BENCH_GLOO
  std::unique_ptr<GlooGroup> gloo_;
#endif
};

std::string sizeLabel(std::int64_t bytes) {
  char text[32];
  if (bytes >= (1 << 20)) {
    std::snprintf(text, sizeof(text), "%lld MiB", static_cast<long long>(bytes >> 20));
  } else {
    std::snprintf(text, sizeof(text), "%lld KiB", static_cast<long long>(bytes >> 10));
  }
  return text;
}

// ringtrain's own all-reduces: each gets a ratio column against every peer (mpi, gloo).
constexpr const char* kOwnImpls[] = {"ring", "shm", "hier"};
bool isOwn(const std::string& impl) {
  return std::find(std::begin(kOwnImpls), std::end(kOwnImpls), impl) != std::end(kOwnImpls);
}

int benchMain(const MpiContext& /*mpi*/, int argc, char** argv) {
  const Args args = parseArgs(argc, argv);
  MpiComm comm;
  if (args.help) {  // every rank parsed the same flags, so every rank returns here
    if (comm.rank() == 0) std::printf("%s\n", kUsage);
    return 0;
  }
  Bench bench(args, comm);
  const bool root = comm.rank() == 0;
  const int n = comm.size();
  const int nodeSize = nodeCommOf(comm.get()).size();
  std::ofstream csv;
  if (root && !args.csv.empty()) {
    const bool fresh =
        !std::filesystem::exists(args.csv) || std::filesystem::file_size(args.csv) == 0;
    csv.open(args.csv, std::ios::app);
    if (!csv) throw ConfigError("cannot open " + args.csv + " for writing");
    if (fresh) csv << "impl,np,bytes,time_us,algbw_gbps,busbw_gbps\n";
  }
  if (root) {
    std::printf(
        "# all-reduce float32 sum, np=%d (%d per node), median time; busbw = "
        "S/t*2(n-1)/n in GB/s; memcpy = (read+written)/t, one process\n",
        n, nodeSize);
    std::printf("%9s", "size");
    for (const auto& impl : bench.impls())
      std::printf(" %10s_us %7s_bus", impl.c_str(), impl.c_str());
    std::printf(" %9s", "memcpy");
    for (const auto& base : kOwnImpls) {
      if (!bench.has(base)) continue;
      for (const auto& impl : bench.impls()) {
        if (!isOwn(impl)) std::printf("  %s/%-4s", base, impl.c_str());
      }
    }
    if (bench.has("hier") && bench.has("ring")) std::printf("  hier/ring");
    std::printf("\n");
  }
  // Ring and MPI_Allreduce over every size first, then Gloo (see startGloo).
  std::vector<std::string> peers;
  for (const auto& impl : bench.impls()) {
    if (impl != "gloo") peers.push_back(impl);
  }
  std::vector<std::int64_t> sizes;
  for (std::int64_t bytes = args.minBytes; bytes <= args.maxBytes; bytes *= 4) {
    sizes.push_back(bytes);
  }
  std::map<std::int64_t, std::map<std::string, Result>> results;
  std::map<std::int64_t, Result> copies;
  for (const auto bytes : sizes) {
    results[bytes] = bench.measure(bytes, peers);
    copies[bytes] = bench.measureMemcpy(bytes);
  }
  if (peers.size() < bench.impls().size()) {
    bench.startGloo();
    for (const auto bytes : sizes) results[bytes]["gloo"] = bench.measure(bytes, {"gloo"})["gloo"];
  }
  if (!root) return 0;
  for (const auto bytes : sizes) {
    const auto& result = results[bytes];
    std::printf("%9s", sizeLabel(bytes).c_str());
    for (const auto& impl : bench.impls()) {
      const Result& r = result.at(impl);
      std::printf(" %13.1f %11.2f", r.seconds * 1e6, r.busbw);
      csv << impl << ',' << n << ',' << bytes << ',' << r.seconds * 1e6 << ',' << r.algbw << ','
          << r.busbw << '\n';
    }
    const Result& copy = copies[bytes];
    std::printf(" %9.2f", copy.busbw);
    csv << "memcpy,1," << bytes << ',' << copy.seconds * 1e6 << ',' << copy.algbw << ','
        << copy.busbw << '\n';
    for (const auto& base : kOwnImpls) {
      if (!result.count(base)) continue;
      for (const auto& impl : bench.impls()) {
        if (!isOwn(impl)) std::printf("  %9.2fx", result.at(base).busbw / result.at(impl).busbw);
      }
    }
    if (result.count("hier") && result.count("ring")) {
      std::printf("  %8.2fx", result.at("hier").busbw / result.at("ring").busbw);
    }
    std::printf("\n");
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace ringtrain

int main(int argc, char** argv) {
  return ringtrain::runMpiMain(&argc, &argv, [&](ringtrain::MpiContext& mpi) {
    return ringtrain::benchMain(mpi, argc, argv);
  });
}
