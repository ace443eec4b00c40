#include "collectives/mpi_context.h"

#include <chrono>
#include <climits>
#include <cstdlib>
#include <string>
#include <thread>
#include <utility>

#include "core/error.h"

namespace ringtrain {

void checkMpi(int rc, const char* what, int rank) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  if (MPI_Error_string(rc, text, &length) != MPI_SUCCESS) length = 0;
  std::string message = std::string(what) + " failed";
  if (rank >= 0) message += " on rank " + std::to_string(rank);
  message += ": " + std::string(text, static_cast<std::size_t>(length));
  throw CommError(message,
                  "a peer rank probably died or the job is mis-launched; check the other "
                  "ranks' logs and launch every rank with the same mpirun",
                  rank);
}

SlurmLaunch slurmLaunchFromEnvironment() {
  const auto number = [](const char* name) {
    const char* text = std::getenv(name);
    return text && *text ? std::strtol(text, nullptr, 10) : 0L;
  };
  SlurmLaunch launch;
  // mpirun's ranks (also mpirun inside an allocation) carry OMPI_COMM_WORLD_SIZE from their
  // launcher; srun's tasks do not.
  launch.bySrun = std::getenv("SLURM_STEP_ID") && !std::getenv("OMPI_COMM_WORLD_SIZE");
  launch.withPmi = std::getenv("PMIX_RANK") || std::getenv("PMI_RANK") || std::getenv("PMI_FD");
  launch.tasks = number("SLURM_STEP_NUM_TASKS");
  if (launch.tasks == 0) launch.tasks = number("SLURM_NTASKS");
  if (std::getenv("SLURM_PROCID")) launch.procId = static_cast<int>(number("SLURM_PROCID"));
  return launch;
}

void checkSlurmLaunch(const SlurmLaunch& launch, int worldSize) {
  if (!launch.bySrun) return;
  if (!launch.withPmi) {
    throw ConfigError(
        "srun started this process without an MPI plug-in, so its " + std::to_string(launch.tasks) +
            " task(s) cannot join one MPI job (they would train alone, into one run directory)",
        "launch with srun --mpi=pmix (the plug-in Debian's Open MPI and SLURM share), or set "
        "MpiDefault=pmix in slurm.conf",
        launch.procId);
  }
  if (worldSize >= 0 && launch.tasks > 0 && worldSize != launch.tasks) {
    throw ConfigError("MPI sees " + std::to_string(worldSize) + " rank(s), but SLURM started " +
                          std::to_string(launch.tasks) + " task(s) (SLURM_STEP_NUM_TASKS)",
                      "start every task of the step with one srun --mpi=pmix", launch.procId);
  }
}

MpiContext::MpiContext(int* argc, char*** argv) {
  const SlurmLaunch slurm = slurmLaunchFromEnvironment();
  checkSlurmLaunch(slurm, -1);
  int initialised = 0;
  checkMpi(MPI_Initialized(&initialised), "MPI_Initialized");
  int provided = MPI_THREAD_SINGLE;
  if (initialised) {
    checkMpi(MPI_Query_thread(&provided), "MPI_Query_thread");
  } else {
    checkMpi(MPI_Init_thread(argc, argv, MPI_THREAD_MULTIPLE, &provided), "MPI_Init_thread");
    ownsMpi_ = true;
  }
  // Errors on the world communicator (rank queries, splits) are reported, not fatal.
  MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  checkMpi(MPI_Comm_rank(MPI_COMM_WORLD, &worldRank_), "MPI_Comm_rank");
  checkMpi(MPI_Comm_size(MPI_COMM_WORLD, &worldSize_), "MPI_Comm_size");
  if (provided < MPI_THREAD_MULTIPLE) {
    if (ownsMpi_) MPI_Finalize();
    throw CommError("MPI provides thread level " + std::to_string(provided) +
                        ", but ringtrain needs MPI_THREAD_MULTIPLE (" +
                        std::to_string(MPI_THREAD_MULTIPLE) + ")",
                    "use an MPI built with thread support (OpenMPI: "
                    "`ompi_info | grep MPI_THREAD_MULTIPLE` must say yes)",
                    worldRank_);
  }
  if (ownsMpi_) {
    try {
      checkSlurmLaunch(slurm, worldSize_);
    } catch (const ConfigError&) {
      MPI_Finalize();
      throw;
    }
  }
  MPI_Comm local = MPI_COMM_NULL;
  checkMpi(
      MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, worldRank_, MPI_INFO_NULL, &local),
      "MPI_Comm_split_type", worldRank_);
  MPI_Comm_rank(local, &localRank_);
  MPI_Comm_size(local, &localSize_);
  MPI_Comm_free(&local);
}

MpiContext::~MpiContext() {
  if (!ownsMpi_) return;
  int finalised = 0;
  MPI_Finalized(&finalised);
  if (!finalised) MPI_Finalize();
}

void MpiContext::abortJob(int code) {
  // MPI_Abort asks the launcher to kill every rank, and blocks until it does. A launcher that
  // has lost a host (a cut link, a dead node) may never get the order through: this rank
  // then ends by itself after a grace, so no process outlives its error by more than that.
  std::thread([code] {
    std::this_thread::sleep_for(std::chrono::seconds(kAbortGraceSeconds));
    std::_Exit(code);
  }).detach();
  MPI_Abort(MPI_COMM_WORLD, code);
  // MPI_Abort does not return on a working MPI; this keeps [[noreturn]] honest otherwise.
  std::_Exit(code);
}

MpiComm::MpiComm(MPI_Comm parent) {
  int parentRank = -1;
  MPI_Comm_rank(parent, &parentRank);
  checkMpi(MPI_Comm_dup(parent, &comm_), "MPI_Comm_dup", parentRank);
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  checkMpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank", parentRank);
  checkMpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size", parentRank);
}

MpiComm::MpiComm(MPI_Comm comm, Adopt) : comm_(comm) {
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  checkMpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
  checkMpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size", rank_);
}

MpiComm MpiComm::adopt(MPI_Comm comm) { return MpiComm(comm, Adopt{}); }

MpiComm::~MpiComm() { reset(); }

MpiComm::MpiComm(MpiComm&& other) noexcept
    : comm_(std::exchange(other.comm_, MPI_COMM_NULL)),
      rank_(std::exchange(other.rank_, -1)),
      size_(std::exchange(other.size_, 0)) {}

MpiComm& MpiComm::operator=(MpiComm&& other) noexcept {
  if (this != &other) {
    reset();
    comm_ = std::exchange(other.comm_, MPI_COMM_NULL);
    rank_ = std::exchange(other.rank_, -1);
    size_ = std::exchange(other.size_, 0);
  }
  return *this;
}

void MpiComm::reset() noexcept {
  if (comm_ == MPI_COMM_NULL) return;
  int finalised = 0;
  MPI_Finalized(&finalised);
  // Freeing after MPI_Finalize is an error; the handle is gone with MPI anyway.
  if (!finalised) MPI_Comm_free(&comm_);
  comm_ = MPI_COMM_NULL;
}

namespace {

// RINGTRAIN_RANKS_PER_NODE (see nodeCommOf), or 0 when it is unset.
int ranksPerNodeOverride(int rank) {
  const char* text = std::getenv("RINGTRAIN_RANKS_PER_NODE");
  if (!text || !*text) return 0;
  char* end = nullptr;
  const long k = std::strtol(text, &end, 10);
  if (*end != '\0' || k < 1 || k > INT_MAX) {
    throw ConfigError(
        "RINGTRAIN_RANKS_PER_NODE='" + std::string(text) + "' is not a positive whole number",
        "unset it, or set the number of consecutive ranks to treat as one node "
        "(a setting for testing the multi-node path on one machine)",
        rank);
  }
  return static_cast<int>(k);
}

}  // namespace

MpiComm nodeCommOf(MPI_Comm parent) {
  int rank = -1;
  MPI_Comm_rank(parent, &rank);
  const int groupSize = ranksPerNodeOverride(rank);
  MPI_Comm split = MPI_COMM_NULL;
  checkMpi(MPI_Comm_split_type(parent, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &split),
           "MPI_Comm_split_type", rank);
  MpiComm node = MpiComm::adopt(split);
  if (groupSize == 0) return node;
  checkMpi(MPI_Comm_split(node.get(), node.rank() / groupSize, node.rank(), &split),
           "MPI_Comm_split (RINGTRAIN_RANKS_PER_NODE)", rank);
  return MpiComm::adopt(split);
}

std::vector<std::string> hostNamesOf(MPI_Comm comm) {
  int rank = -1;
  int size = 0;
  MPI_Comm_rank(comm, &rank);
  MPI_Comm_size(comm, &size);
  std::vector<char> mine(MPI_MAX_PROCESSOR_NAME, '\0');
  int length = 0;
  checkMpi(MPI_Get_processor_name(mine.data(), &length), "MPI_Get_processor_name", rank);
  std::vector<char> all(static_cast<size_t>(size) * MPI_MAX_PROCESSOR_NAME, '\0');
  checkMpi(MPI_Allgather(mine.data(), MPI_MAX_PROCESSOR_NAME, MPI_CHAR, all.data(),
                         MPI_MAX_PROCESSOR_NAME, MPI_CHAR, comm),
           "MPI_Allgather (host names)", rank);
  std::vector<std::string> names;
  for (int r = 0; r < size; ++r)
    names.emplace_back(&all[static_cast<size_t>(r) * MPI_MAX_PROCESSOR_NAME]);
  return names;
}

std::optional<MpiComm> acrossCommOf(MPI_Comm parent, const MpiComm& node) {
  int rank = -1;
  int size = 0;
  MPI_Comm_rank(parent, &rank);
  MPI_Comm_size(parent, &size);
  if (node.size() == size) return std::nullopt;  // one node: the same on every rank
  int sizes[2] = {node.size(), -node.size()};    // min and -max through one MPI_MIN
  checkMpi(MPI_Allreduce(MPI_IN_PLACE, sizes, 2, MPI_INT, MPI_MIN, parent),
           "MPI_Allreduce (node sizes)", rank);
  if (sizes[0] != -sizes[1] || sizes[0] == 1) return std::nullopt;
  MPI_Comm across = MPI_COMM_NULL;
  checkMpi(MPI_Comm_split(parent, node.rank(), rank, &across), "MPI_Comm_split (across)", rank);
  return MpiComm::adopt(across);
}

}  // namespace ringtrain
