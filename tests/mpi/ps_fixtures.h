// Fixtures of the parameter-server MPI tests (test_ps.cpp: the protocol; test_ps_trainer.cpp:
// the Trainer in parameter-server mode): a synthetic image set, a tiny model, a directory
// every rank shares, the PS config of the tests.
#pragma once

#include <gtest/gtest.h>
#include <mpi.h>
#include <unistd.h>

#include <filesystem>
#include <memory>
#include <string>

#include "data/dataset.h"
#include "models/registry.h"
#include "trainer/config/config.h"

namespace ringtrain::pstest {

namespace fs = std::filesystem;

inline int worldRank() {
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  return rank;
}

inline int worldSize() {
  int size = 1;
  MPI_Comm_size(MPI_COMM_WORLD, &size);
  return size;
}

class SyntheticImages : public Dataset {
 public:
  explicit SyntheticImages(int64_t n) {
    torch::manual_seed(1234);
    inputs_ = torch::randn({n, 1, 28, 28});
    targets_ = torch::randint(0, 10, {n}, torch::kInt64);
  }
  int64_t size() const override { return inputs_.size(0); }
  Batch get(const std::vector<int64_t>& indices) const override {
    auto idx = torch::tensor(indices, torch::kInt64);
    return {inputs_.index_select(0, idx), targets_.index_select(0, idx)};
  }

 private:
  torch::Tensor inputs_;
  torch::Tensor targets_;
};

// A small two-layer model for the protocol tests.
class Tiny : public Model {
 public:
  Tiny() {
    a_ = register_module("a", torch::nn::Linear(8, 16));
    b_ = register_module("b", torch::nn::Linear(16, 4));
  }
  torch::Tensor forward(const Inputs& x) override { return b_(torch::relu(a_(x.tensor()))); }

 private:
  torch::nn::Linear a_{nullptr};
  torch::nn::Linear b_{nullptr};
};

inline ModelPtr freshModel(const std::string& name) {
  torch::manual_seed(7);  // the same initial weights everywhere
  if (name == "tiny") return std::make_shared<Tiny>();
  return makeModel(name);
}

// A directory every rank agrees on (rank 0's pid), removed by rank 0 at the end.
class SharedTempDir {
 public:
  explicit SharedTempDir(const std::string& name) {
    long pid = worldRank() == 0 ? static_cast<long>(::getpid()) : 0;
    MPI_Bcast(&pid, 1, MPI_LONG, 0, MPI_COMM_WORLD);
    path_ = (fs::path(::testing::TempDir()) / ("ringtrain_ps_" + name + "_" + std::to_string(pid)))
                .string();
  }
  ~SharedTempDir() {
    MPI_Barrier(MPI_COMM_WORLD);
    std::error_code ec;
    if (worldRank() == 0) fs::remove_all(path_, ec);
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

inline Config psConfig(int servers, const std::string& consistency) {
  Config cfg;
  cfg.model.name = "fashion_mlp";
  cfg.data.batch_size = 8;
  cfg.data.prefetch = 2;
  cfg.optimizer.name = "sgd";
  cfg.optimizer.lr = 0.05;
  cfg.optimizer.momentum = 0.9;
  cfg.schedule.name = "cosine";
  cfg.schedule.warmup_steps = 3;
  cfg.train.epochs = 1;
  cfg.train.max_steps = 12;
  cfg.train.seed = 3;
  cfg.train.log_every = 1000;
  cfg.train.threads = 1;
  cfg.checkpoint.enabled = false;
  cfg.distributed.mode = "ps";
  cfg.distributed.timeout_s = 120;
  cfg.ps.servers = servers;
  cfg.ps.consistency = consistency;
  return cfg;
}

inline double maxAbsDiff(Model& a, Model& b) {
  auto pa = a.parameters();
  auto pb = b.parameters();
  double diff = 0.0;
  for (size_t i = 0; i < pa.size(); ++i) {
    diff = std::max(diff, (pa[i] - pb[i]).abs().max().item<double>());
  }
  return diff;
}

}  // namespace ringtrain::pstest
