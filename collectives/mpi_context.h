// RAII owners of MPI state: MpiContext initialises and finalises MPI for the process, MpiComm
// owns one duplicated communicator. Errors on an MpiComm are returned (MPI_ERRORS_RETURN)
// rather than aborting the job, and checkMpi turns them into CommError naming the rank.
#pragma once

#include <mpi.h>

#include <optional>
#include <string>
#include <vector>

namespace ringtrain {

// Throws CommError("<what> failed on rank R: <MPI error string>") when rc != MPI_SUCCESS.
void checkMpi(int rc, const char* what, int rank = -1);

class MpiContext {
 public:
  // Calls MPI_Init_thread asking for MPI_THREAD_MULTIPLE: the communicator's background
  // thread issues MPI calls while the caller's thread may issue its own. Throws CommError if
  // the library provides less. If MPI is already initialised, adopts it and will not finalise.
  MpiContext(int* argc, char*** argv);
  ~MpiContext();
  MpiContext(const MpiContext&) = delete;
  MpiContext& operator=(const MpiContext&) = delete;

  int worldRank() const { return worldRank_; }
  int worldSize() const { return worldSize_; }
  // Rank and size among the processes on this node (MPI_COMM_TYPE_SHARED).
  int localRank() const { return localRank_; }
  int localSize() const { return localSize_; }

  // Kills every rank of the job. Only for main(): library code throws instead. When the
  // launcher cannot carry out the abort within kAbortGraceSeconds (it lost a host), this
  // process exits with `code` by itself.
  [[noreturn]] static void abortJob(int code);
  static constexpr int kAbortGraceSeconds = 5;

 private:
  bool ownsMpi_ = false;
  int worldRank_ = 0;
  int worldSize_ = 1;
  int localRank_ = 0;
  int localSize_ = 1;
};

class MpiComm {
 public:
  // Duplicates `parent` so that traffic on this communicator can never match messages of
  // other users of `parent`, and switches it to MPI_ERRORS_RETURN.
  explicit MpiComm(MPI_Comm parent = MPI_COMM_WORLD);
  // Takes ownership of `comm`, a communicator this process just made (MPI_Comm_split and
  // the like: already private to its creator), without duplicating it again; switches it to
  // MPI_ERRORS_RETURN.
  static MpiComm adopt(MPI_Comm comm);
  ~MpiComm();
  MpiComm(MpiComm&& other) noexcept;
  MpiComm& operator=(MpiComm&& other) noexcept;
  MpiComm(const MpiComm&) = delete;
  MpiComm& operator=(const MpiComm&) = delete;

  MPI_Comm get() const { return comm_; }
  int rank() const { return rank_; }
  int size() const { return size_; }

 private:
  struct Adopt {};
  MpiComm(MPI_Comm comm, Adopt);
  void reset() noexcept;

  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = -1;
  int size_ = 0;
};

// The ranks of `parent` that share this node's memory (MPI_COMM_TYPE_SHARED), in `parent`'s
// rank order. Collective over `parent`.
//
// For tests and benchmarks of the multi-node path on one machine, the environment variable
// RINGTRAIN_RANKS_PER_NODE=k cuts each node into groups of k consecutive ranks (the last
// group may be smaller), and each group counts as a node of its own. Throws ConfigError if it
// is set to anything but a positive whole number.
MpiComm nodeCommOf(MPI_Comm parent);

// How SLURM started this process, read from the environment before MPI_Init (which may add
// variables of its own).
struct SlurmLaunch {
  bool bySrun = false;   // a task of an srun step, not a rank that mpirun started
  bool withPmi = false;  // with an MPI plug-in (srun --mpi=pmix, or pmi2)
  long tasks = 0;        // the step's tasks (SLURM_STEP_NUM_TASKS, else SLURM_NTASKS)
  int procId = -1;       // SLURM_PROCID
};
SlurmLaunch slurmLaunchFromEnvironment();

// Throws ConfigError, naming the fix, when srun started this process in a way that cannot
// make one MPI job of `worldSize` (-1: before MPI_Init): without an MPI plug-in, or with a
// world that is not the step's tasks. Nothing when SLURM did not start it directly.
void checkSlurmLaunch(const SlurmLaunch& launch, int worldSize);

// The host name (MPI_Get_processor_name) of every rank of `comm`, in rank order. Collective
// over `comm`.
std::vector<std::string> hostNamesOf(MPI_Comm comm);

// For the hierarchical all-reduce across nodes: when `parent` spans more than one node and
// every node holds the same number (> 1) of its ranks, the communicator of the ranks whose
// node rank equals this one's (one per node, in `parent`'s order); otherwise none. `node` is
// nodeCommOf(parent). Collective over `parent`; every rank gets the same answer.
std::optional<MpiComm> acrossCommOf(MPI_Comm parent, const MpiComm& node);

}  // namespace ringtrain
