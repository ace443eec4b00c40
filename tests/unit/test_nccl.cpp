// The NCCL backend's logic that runs without a GPU: the start-up checks and their one-line
// errors, device selection, error formatting, the poll decision of Work::wait, and what this
// build holds. Compiled in every build; the NCCL-only parts are under RINGTRAIN_WITH_NCCL.
#include <gtest/gtest.h>

#include <string>

#include "collectives/gpu_backend.h"
#include "core/error.h"

#if RINGTRAIN_WITH_NCCL
#include "collectives/cuda_check.h"
#include "collectives/mpi_communicator.h"
#include "collectives/mpi_context.h"
#include "collectives/nccl_communicator.h"
#endif

namespace ringtrain {
namespace {

// Runs `f`, which must throw ConfigError, and returns the error's one-line report.
template <typename F>
std::string configErrorLine(F&& f, int* rank = nullptr) {
  try {
    f();
  } catch (const ConfigError& e) {
    if (rank) *rank = e.rank();
    return e.oneLine();
  }
  ADD_FAILURE() << "no ConfigError thrown";
  return {};
}

bool contains(const std::string& text, const std::string& part) {
  return text.find(part) != std::string::npos;
}

GpuProbe makeProbe(bool built, bool torchCuda, int devices, std::string error = {}) {
  GpuProbe probe;
  probe.builtWithNccl = built;
  probe.torchHasCuda = torchCuda;
  probe.deviceCount = devices;
  probe.deviceError = std::move(error);
  return probe;
}

TEST(NcclStartup, WithoutNcclInTheBuildSaysSoAndHowToFix) {
  const std::string line = configErrorLine([] { requireGpuBackend(makeProbe(false, true, 4), 2); });
  EXPECT_TRUE(contains(line,
                       "[rank 2] config error: distributed.backend: nccl is not built "
                       "into this binary"))
      << line;
  EXPECT_TRUE(contains(line, "HINT: use distributed.backend ring or mpi")) << line;
  EXPECT_TRUE(contains(line, "-DRINGTRAIN_NCCL=ON")) << line;
}

TEST(NcclStartup, NoGpuAndCpuOnlyLibTorchNamesBothInOneLine) {
  int rank = -2;
  const std::string line = configErrorLine(
      [] { requireGpuBackend(makeProbe(true, false, 0, "no CUDA-capable device is detected"), 1); },
      &rank);
  EXPECT_EQ(rank, 1);
  EXPECT_EQ(line.find('\n'), std::string::npos) << line;
  EXPECT_TRUE(contains(line,
                       "distributed.backend: nccl needs a GPU and a CUDA-enabled LibTorch; "
                       "no GPU is visible to this process (cudaGetDeviceCount: no "
                       "CUDA-capable device is detected) and this LibTorch is CPU-only"))
      << line;
  EXPECT_TRUE(contains(line, "HINT: use distributed.backend ring or mpi")) << line;
  EXPECT_TRUE(contains(line,
                       "cmake -DCMAKE_PREFIX_PATH=$(python3 -c 'import "
                       "torch;print(torch.utils.cmake_prefix_path)')"))
      << line;
}

TEST(NcclStartup, GpuButCpuOnlyLibTorchBlamesLibTorchOnly) {
  const std::string line = configErrorLine([] { requireGpuBackend(makeProbe(true, false, 2)); });
  EXPECT_TRUE(contains(line, "; this LibTorch is CPU-only")) << line;
  EXPECT_FALSE(contains(line, "no GPU")) << line;
  EXPECT_TRUE(contains(line, "torch.utils.cmake_prefix_path")) << line;
}

TEST(NcclStartup, CudaLibTorchWithoutGpuBlamesTheMissingGpuOnly) {
  const std::string line = configErrorLine([] { requireGpuBackend(makeProbe(true, true, 0)); });
  EXPECT_TRUE(contains(line, "; no GPU is visible to this process")) << line;
  EXPECT_FALSE(contains(line, "CPU-only")) << line;
  EXPECT_FALSE(contains(line, "cudaGetDeviceCount")) << line;  // no CUDA reason was given
  EXPECT_TRUE(contains(line, "nvidia-smi")) << line;
}

TEST(NcclStartup, GpuAndCudaLibTorchPass) {
  EXPECT_NO_THROW(requireGpuBackend(makeProbe(true, true, 1)));
  EXPECT_NO_THROW(requireGpuBackend(makeProbe(true, true, 8)));
}

TEST(NcclStartup, FactoryRefusesWithTheProbesLineWhenNoGpuIsUsable) {
  const GpuProbe probe = probeGpu();
  EXPECT_EQ(probe.builtWithNccl, ncclBuiltIn());
  if (probe.builtWithNccl && probe.torchHasCuda && probe.deviceCount > 0) {
    GTEST_SKIP() << "a GPU and a CUDA LibTorch are usable here: nothing to refuse";
  }
  // MPI is not initialised in this process: the factory must refuse before touching it.
  const std::string expected = configErrorLine([&] { requireGpuBackend(probe); });
  const std::string line =
      configErrorLine([] { makeNcclCommunicator(MPI_COMM_WORLD, std::chrono::seconds(1)); });
  EXPECT_EQ(line, expected);
  EXPECT_TRUE(contains(line, "distributed.backend: nccl ")) << line;
}

TEST(NcclDeviceSelection, LocalRankIsTheDevice) {
  EXPECT_EQ(selectDevice(0, 1, 1), 0);
  EXPECT_EQ(selectDevice(3, 4, 4), 3);
  EXPECT_EQ(selectDevice(2, 4, 8), 2);  // spare GPUs stay unused
}

TEST(NcclDeviceSelection, ARankThatSeesOneGpuUsesDeviceZero) {
  // SLURM --gpus-per-task=1 or a CUDA_VISIBLE_DEVICES per rank: every rank sees one device.
  EXPECT_EQ(selectDevice(1, 2, 1), 0);
  EXPECT_EQ(selectDevice(3, 4, 1), 0);
}

TEST(NcclDeviceSelection, MoreRanksThanTheGpusARankSeesIsAConfigError) {
  int rank = -2;
  const std::string line = configErrorLine([] { selectDevice(1, 3, 2, 5); }, &rank);
  EXPECT_EQ(rank, 5);
  EXPECT_TRUE(contains(line, "needs one GPU per rank, but 3 ranks share this node's 2 GPU(s)"))
      << line;
  EXPECT_TRUE(contains(line, "HINT: launch at most 2 rank(s) per node (mpirun -np 2")) << line;
  // Every rank of the node fails alike, local rank 0 included: none is left waiting.
  EXPECT_THROW(selectDevice(0, 3, 2), ConfigError);
}

TEST(NcclDeviceSelection, RanksOnTheSamePhysicalGpuAreFound) {
  EXPECT_EQ(sameGpuOnANode({}), std::make_pair(-1, -1));
  EXPECT_EQ(sameGpuOnANode({"GPU-a"}), std::make_pair(-1, -1));
  EXPECT_EQ(sameGpuOnANode({"GPU-a", "GPU-b", "GPU-c"}), std::make_pair(-1, -1));
  EXPECT_EQ(sameGpuOnANode({"GPU-a", "GPU-b", "GPU-a"}), std::make_pair(0, 2));
  EXPECT_EQ(sameGpuOnANode({"GPU-a", "GPU-b", "GPU-b", "GPU-a"}), std::make_pair(0, 3));
  EXPECT_NO_THROW(requireOwnGpu({"GPU-a", "GPU-b"}, 1));
  int rank = -2;
  const std::string line = configErrorLine([] { requireOwnGpu({"GPU-x", "GPU-x"}, 1); }, &rank);
  EXPECT_EQ(rank, 1);
  EXPECT_TRUE(contains(line,
                       "needs one GPU per rank, but local ranks 0 and 1 of this node's 2 "
                       "ranks share GPU GPU-x"))
      << line;
  EXPECT_TRUE(contains(line, "HINT: give each rank its own GPU (srun --gpus-per-task=1")) << line;
}

TEST(NcclDeviceSelection, NoGpuOrABadLocalRankIsAConfigError) {
  EXPECT_THROW(selectDevice(0, 1, 0), ConfigError);
  EXPECT_THROW(selectDevice(-1, 2, 2), ConfigError);
  EXPECT_THROW(selectDevice(2, 2, 4), ConfigError);
  EXPECT_THROW(selectDevice(2, 2, 1), ConfigError);
}

TEST(NcclErrors, FormatNamesCallRankTextAndCode) {
  EXPECT_EQ(formatGpuError("ncclAllReduce", 1, "ncclSystemError", 2, "unhandled system error",
                           "socket closed by peer"),
            "ncclAllReduce failed on rank 1: unhandled system error (ncclSystemError=2). socket "
            "closed by peer");
  EXPECT_EQ(
      formatGpuError("cudaSetDevice", -1, "cudaErrorInvalidDevice", 101, "invalid device ordinal"),
      "cudaSetDevice failed: invalid device ordinal (cudaErrorInvalidDevice=101)");
}

TEST(NcclWait, PollDecisionPrefersCompletionThenErrorsThenTimeout) {
  // eventDone, eventError, asyncError, pastDeadline
  EXPECT_EQ(classifyPoll(false, false, false, false), PollOutcome::Pending);
  EXPECT_EQ(classifyPoll(true, false, false, false), PollOutcome::Done);
  EXPECT_EQ(classifyPoll(true, false, false, true), PollOutcome::Done);
  EXPECT_EQ(classifyPoll(true, false, true, true), PollOutcome::Done);
  EXPECT_EQ(classifyPoll(false, true, false, false), PollOutcome::Failed);
  EXPECT_EQ(classifyPoll(false, false, true, false), PollOutcome::Failed);
  EXPECT_EQ(classifyPoll(false, false, true, true), PollOutcome::Failed);
  EXPECT_EQ(classifyPoll(false, false, false, true), PollOutcome::TimedOut);
}

// A communicator that is not NCCL: the trainer keeps its model on the CPU with it.
class CpuOnlyComm : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backendName() const override { return "fake"; }
  WorkPtr allreduce(torch::Tensor&, const std::string&, ReduceOp) override { return nullptr; }
  WorkPtr broadcast(torch::Tensor&, int) override { return nullptr; }
  WorkPtr allgather(const torch::Tensor&, torch::Tensor&) override { return nullptr; }
  void barrier() override {}
};

TEST(NcclDevice, OtherBackendsTrainOnTheCpu) {
  CpuOnlyComm comm;
  EXPECT_EQ(trainingDevice(comm), torch::Device(torch::kCPU));
}

// What CMake decided (cmake/nccl.cmake) must reach the library and its users alike.
TEST(NcclBuild, CompileDefinitionMatchesTheLibrary) {
#if RINGTRAIN_WITH_NCCL
  EXPECT_TRUE(ncclBuiltIn());
  const std::string header = std::to_string(NCCL_MAJOR) + "." + std::to_string(NCCL_MINOR) + ".";
  EXPECT_EQ(ncclVersion().rfind(header, 0), 0u)
      << "loaded NCCL " << ncclVersion() << ", headers " << header;
#else
  EXPECT_FALSE(ncclBuiltIn());
  EXPECT_EQ(ncclVersion(), "");
  EXPECT_EQ(probeGpu().deviceCount, 0);
#endif
}

#if RINGTRAIN_WITH_NCCL

TEST(NcclBuild, DtypesMapToNcclTypes) {
  ncclDataType_t type{};
  ASSERT_TRUE(toNcclDataType(at::kFloat, &type));
  EXPECT_EQ(type, ncclFloat32);
  ASSERT_TRUE(toNcclDataType(at::kDouble, &type));
  EXPECT_EQ(type, ncclFloat64);
  ASSERT_TRUE(toNcclDataType(at::kHalf, &type));
  EXPECT_EQ(type, ncclFloat16);
  ASSERT_TRUE(toNcclDataType(at::kBFloat16, &type));
  EXPECT_EQ(type, ncclBfloat16);
  ASSERT_TRUE(toNcclDataType(at::kInt, &type));
  EXPECT_EQ(type, ncclInt32);
  ASSERT_TRUE(toNcclDataType(at::kLong, &type));
  EXPECT_EQ(type, ncclInt64);
  ASSERT_TRUE(toNcclDataType(at::kByte, &type));
  EXPECT_EQ(type, ncclUint8);
  EXPECT_FALSE(toNcclDataType(at::kBool, &type));
  EXPECT_FALSE(toNcclDataType(at::kComplexFloat, &type));
}

TEST(NcclBuild, CheckNcclThrowsCommErrorWithNcclsText) {
  EXPECT_NO_THROW(checkNccl(ncclSuccess, "ncclAllReduce", 0));
  try {
    checkNccl(ncclSystemError, "ncclAllReduce", 3);
    FAIL() << "no CommError";
  } catch (const CommError& e) {
    EXPECT_EQ(e.rank(), 3);
    const std::string expected = std::string("ncclAllReduce failed on rank 3: ") +
                                 ncclGetErrorString(ncclSystemError) + " (ncclSystemError=2)";
    EXPECT_EQ(std::string(e.what()).rfind(expected, 0), 0u) << e.what();
    EXPECT_TRUE(contains(e.hint(), "NCCL_DEBUG=INFO")) << e.hint();
  }
}

TEST(NcclBuild, CheckCudaThrowsCommErrorWithCudasText) {
  EXPECT_NO_THROW(checkCuda(cudaSuccess, "cudaMalloc", 0));
  try {
    checkCuda(cudaErrorMemoryAllocation, "cudaMalloc", 1);
    FAIL() << "no CommError";
  } catch (const CommError& e) {
    EXPECT_EQ(std::string(e.what()), std::string("cudaMalloc failed on rank 1: ") +
                                         cudaGetErrorString(cudaErrorMemoryAllocation) +
                                         " (cudaErrorMemoryAllocation=2)");
    EXPECT_TRUE(contains(e.hint(), "data.batch_size")) << e.hint();
  }
}

TEST(NcclBuild, ResultNamesAreDistinct) {
  const std::string system = ncclResultName(ncclSystemError);
  EXPECT_EQ(system, "ncclSystemError");
  EXPECT_EQ(std::string(ncclResultName(ncclInvalidUsage)), "ncclInvalidUsage");
  EXPECT_NE(system, ncclResultName(ncclInternalError));
}

TEST(NcclBuild, DeviceCountReportsWhyThereIsNone) {
  std::string error;
  const int count = cudaDeviceCount(&error);
  if (count > 0) GTEST_SKIP() << count << " GPU(s) here";
  EXPECT_EQ(count, 0);
  EXPECT_EQ(probeGpu().deviceCount, 0);
  // The CUDA runtime always explains a failure; a clean zero count leaves no reason.
  int raw = -1;
  if (cudaGetDeviceCount(&raw) != cudaSuccess) {
    EXPECT_FALSE(error.empty());
  }
  cudaGetLastError();
}

TEST(NcclBuild, OnlyNcclCommunicatorsHaveADevice) {
  CpuOnlyComm comm;
  EXPECT_EQ(ncclDeviceOf(comm), -1);
}

// Runs only where a GPU and a CUDA LibTorch are usable (bench/gpu/run_gpu_checks.sh). It
// starts MPI as a singleton and finalises it, so it must stay the only MPI user of this binary.
TEST(NcclGpu, OneRankCollectivesOnTheGpu) {
  const GpuProbe probe = probeGpu();
  if (!probe.builtWithNccl || !probe.torchHasCuda || probe.deviceCount <= 0) {
    GTEST_SKIP() << "no usable GPU here";
  }
  MpiContext mpi(nullptr, nullptr);
  const auto timeout = std::chrono::seconds(60);
  auto comm = makeCommunicator("nccl", MPI_COMM_WORLD, timeout);
  ASSERT_EQ(comm->backendName(), "nccl");
  const torch::Device device = trainingDevice(*comm);
  ASSERT_TRUE(device.is_cuda());
  EXPECT_EQ(device.index(), ncclDeviceOf(*comm));
  const auto onGpu = torch::TensorOptions().device(device);

  // Stream order: the input comes out of a chain of kernels still queued on the compute
  // stream when allgather is called; the gathered copy must hold the final values.
  auto x = torch::zeros({1 << 22}, onGpu);
  for (int i = 0; i < 50; ++i) x = x + 1;
  auto gathered = torch::empty({1 << 22}, onGpu);
  auto work = comm->allgather(x, gathered);
  work->wait(timeout);
  EXPECT_TRUE(work->isCompleted());
  EXPECT_TRUE(gathered.eq(50).all().item<bool>());

  auto y = x + 1;
  comm->allreduce(y, "test")->wait(timeout);  // one rank: the sum is the tensor itself
  EXPECT_TRUE(y.eq(51).all().item<bool>());
  auto half = torch::full({1000}, 3.0, onGpu.dtype(torch::kBFloat16));
  comm->allreduce(half)->wait(timeout);
  EXPECT_TRUE(half.eq(3.0).all().item<bool>());

  // CPU tensors (the trainer's loss and metric sums) go through the GPU and come back.
  auto cpu = torch::arange(10, torch::kInt64);
  comm->allreduce(cpu)->wait(timeout);
  EXPECT_TRUE(cpu.equal(torch::arange(10, torch::kInt64)));
  auto root = torch::full({4}, 7.0);
  comm->broadcast(root, 0)->wait(timeout);
  EXPECT_TRUE(root.eq(7.0).all().item<bool>());
  auto all = torch::zeros({1, 3}, torch::kInt64);
  comm->allgather(torch::tensor({4, 5, 6}, torch::kInt64), all)->wait(timeout);
  EXPECT_TRUE(all.equal(torch::tensor({{4, 5, 6}}, torch::kInt64)));
  auto empty = torch::empty({0}, onGpu);
  comm->allreduce(empty)->wait(timeout);
  comm->barrier();

  auto strided = torch::ones({4, 4}, onGpu).t();
  EXPECT_THROW(comm->allreduce(strided), CommError);
  auto flags = torch::ones({4}, onGpu.dtype(torch::kBool));
  EXPECT_THROW(comm->allreduce(flags), CommError);
}

#endif  // RINGTRAIN_WITH_NCCL

}  // namespace
}  // namespace ringtrain
