#include "trainer/report/environment.h"

#include <ATen/Version.h>
#include <mpi.h>
#include <torch/torch.h>
#include <yaml-cpp/yaml.h>

#include <cstdlib>
#include <fstream>
#include <map>
#include <thread>

#include "collectives/gpu_backend.h"
#include "collectives/mpi_context.h"
#include "trainer/host/blas_kernels.h"

#ifndef RINGTRAIN_GIT_COMMIT
#define RINGTRAIN_GIT_COMMIT "unknown"
#endif

namespace ringtrain {

namespace {

std::string orUnknown(const std::string& text) { return text.empty() ? "unknown" : text; }

// The value of `key=` in LibTorch's build settings ("BLAS_INFO=mkl, ..."), or "".
std::string buildSetting(const std::string& config, const std::string& key) {
  const auto at = config.find(key + "=");
  if (at == std::string::npos) return {};
  const auto begin = at + key.size() + 1;
  const auto end = config.find_first_of(",\n", begin);
  return config.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

std::string libtorchVersion() {
  std::string text = std::to_string(TORCH_VERSION_MAJOR) + "." +
                     std::to_string(TORCH_VERSION_MINOR) + "." +
                     std::to_string(TORCH_VERSION_PATCH);
  // What LibTorch was built for, not whether a GPU is there (that is the gpus field).
  text += probeGpu().torchHasCuda ? " (CUDA build)" : " (CPU build)";
  return text;
}

std::string blasDescription() {
  const std::string config = at::show_config();
  std::string blas = orUnknown(buildSetting(config, "BLAS_INFO"));
  const BlasKernels kernels = blasKernels();
  if (!kernels.loaded.empty()) blas += ", OpenBLAS kernels " + kernels.loaded;
  const std::string capability = "CPU capability usage: ";
  if (const auto at = config.find(capability); at != std::string::npos) {
    const auto begin = at + capability.size();
    blas += ", ATen " + config.substr(begin, config.find('\n', begin) - begin);
  }
  return blas;
}

std::string mpiLibrary() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) return "unknown (MPI not initialised)";
  char version[MPI_MAX_LIBRARY_VERSION_STRING] = {};
  int length = 0;
  if (MPI_Get_library_version(version, &length) != MPI_SUCCESS) return "unknown";
  std::string text(version, static_cast<size_t>(length));
  text =
      text.substr(0, text.find_first_of(",\n"));  // "Open MPI v4.1.4, package: ..." -> first part
  int major = 0;
  int minor = 0;
  MPI_Get_version(&major, &minor);
  return text + " (MPI " + std::to_string(major) + "." + std::to_string(minor) + ")";
}

std::string cpuDescription() {
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  std::string model;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      model = line.substr(line.find(':') + 1);
      model.erase(0, model.find_first_not_of(' '));
      break;
    }
  }
  return orUnknown(model) + ", " + std::to_string(std::thread::hardware_concurrency()) +
         " logical cores";
}

std::string gpuDescription() {
  const auto names = gpuNames();
  if (names.empty()) return "none";
  std::map<std::string, int> counts;
  for (const auto& n : names) ++counts[n];
  std::string text;
  for (const auto& [name, count] : counts) {
    text += (text.empty() ? "" : ", ") + std::to_string(count) + " x " + name;
  }
  return text;
}

std::string envOr(const char* name, const std::string& fallback) {
  const char* value = std::getenv(name);
  return value && *value ? value : fallback;
}

// Who started this process: SLURM (srun, or mpirun inside an allocation), mpirun, or nobody.
std::string launcherDescription() {
  // (Open MPI gives a singleton PMIX_RANK too, but OMPI_COMM_WORLD_SIZE only to the ranks
  // that mpirun started; PMI_RANK is MPICH's Hydra.)
  const bool mpirun = std::getenv("OMPI_COMM_WORLD_SIZE") || std::getenv("PMI_RANK");
  if (std::getenv("SLURM_JOB_ID")) {
    // (The same reading of the environment as the srun launch check's.)
    return std::string(slurmLaunchFromEnvironment().bySrun ? "srun" : "mpirun") +
           " under SLURM (job " + envOr("SLURM_JOB_ID", "?") + ", " + envOr("SLURM_NTASKS", "?") +
           " task(s) on " + envOr("SLURM_JOB_NODELIST", "?") + ")";
  }
  return mpirun ? "mpirun" : "none (a single process)";
}

std::string topologyDescription(const std::vector<std::string>& hostOfRank) {
  if (hostOfRank.empty()) return "1 rank";
  std::map<std::string, int> ranksOn;
  for (const auto& h : hostOfRank) ++ranksOn[h];
  const int perHost = ranksOn.begin()->second;
  bool even = true;
  for (const auto& [host, count] : ranksOn) even = even && count == perHost;
  const std::string hosts = std::to_string(ranksOn.size()) + " host(s)";
  if (even) return hosts + " x " + std::to_string(perHost) + " rank(s)";
  return std::to_string(hostOfRank.size()) + " ranks on " + hosts + " (uneven)";
}

}  // namespace

const std::string& EnvironmentReport::value(const std::string& key) const {
  static const std::string none;
  for (const auto& [k, v] : fields) {
    if (k == key) return v;
  }
  return none;
}

std::string EnvironmentReport::toYaml() const {
  YAML::Emitter out;
  out << YAML::BeginMap;
  for (const auto& [key, v] : fields) out << YAML::Key << key << YAML::Value << v;
  out << YAML::EndMap;
  return std::string(out.c_str()) + "\n";
}

std::string EnvironmentReport::oneLine() const {
  return "env: ringtrain " + value("ringtrain") + ", LibTorch " + value("libtorch") + ", " +
         value("mpi") + ", NCCL " + value("nccl") + ", CUDA " + value("cuda") + ", BLAS " +
         value("blas") + ", GPUs " + value("gpus") + ", launcher " + value("launcher") + ", " +
         value("topology");
}

EnvironmentReport describeEnvironment(const std::vector<std::string>& hostOfRank) {
  EnvironmentReport report;
  auto& f = report.fields;
  f.emplace_back("ringtrain",
                 std::string(RINGTRAIN_VERSION) + " (commit " RINGTRAIN_GIT_COMMIT ")");
  f.emplace_back("libtorch", libtorchVersion());
  f.emplace_back("mpi", mpiLibrary());
  f.emplace_back("nccl", ncclBuiltIn() ? orUnknown(ncclVersion()) : "not built in");
  f.emplace_back("cuda", ncclBuiltIn() ? orUnknown(cudaRuntimeVersion()) : "not built in");
  f.emplace_back("blas", blasDescription());
  f.emplace_back("cpu", cpuDescription());
  f.emplace_back("gpus", gpuDescription());
  f.emplace_back("launcher", launcherDescription());
  f.emplace_back("topology", topologyDescription(hostOfRank));
  return report;
}

}  // namespace ringtrain
