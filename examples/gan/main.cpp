// Your own training loop, made data-parallel with ringtrain::DataParallel: a small GAN whose
// generator learns to draw points on a ring of radius 2.
//
//   mpirun -np 2 gan [STEPS]
//
// Two models, each wrapped in its own DataParallel on one communicator. The discriminator's
// step runs two backward passes (a real and a fake batch): the first in noSync(), so that the
// second sends the sum. The generator's backward passes through the discriminator, whose
// gradients from it are not wanted: that backward runs in the discriminator's noSync() too.
// Every rank reads its own shard of the real points (ringtrain::ShardedSampler in a
// torch::data loader) and draws its own noise; the averaged gradients keep the replicas
// identical, which the program checks at the end.
#include <cmath>
#include <iostream>
#include <string>

#include "collectives/mpi_communicator.h"
#include "collectives/mpi_context.h"
#include "core/error.h"
#include "data/torch_sampler.h"
#include "trainer/data_parallel.h"

namespace {

constexpr int64_t kNoise = 8;
constexpr int64_t kBatch = 64;  // per rank
constexpr double kRadius = 2.0;

torch::nn::Sequential mlp(int64_t in, int64_t out) {
  return torch::nn::Sequential(
      torch::nn::Linear(in, 64),
      torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)),
      torch::nn::Linear(64, 64),
      torch::nn::LeakyReLU(torch::nn::LeakyReLUOptions().negative_slope(0.2)),
      torch::nn::Linear(64, out));
}

// Points on the ring, with a little radial noise; the same set on every rank (seeded).
torch::Tensor ringPoints(int64_t n) {
  auto gen = at::detail::createCPUGenerator(1234);
  auto angle = torch::rand({n}, gen) * (2.0 * M_PI);
  auto radius = kRadius + 0.05 * torch::randn({n}, gen);
  return torch::stack({radius * torch::cos(angle), radius * torch::sin(angle)}, 1);
}

double meanOverRanks(ringtrain::Communicator& comm, double value) {
  auto t = torch::tensor({value}, torch::kFloat64);
  comm.allreduce(t, "mean", ringtrain::ReduceOp::Average)->wait(std::chrono::minutes(1));
  return t.item<double>();
}

// Every rank's parameters equal rank 0's, bitwise: one checksum per rank, compared.
bool replicasIdentical(ringtrain::Communicator& comm, torch::nn::Module& module) {
  std::vector<torch::Tensor> flat;
  for (const auto& p : module.parameters()) flat.push_back(p.detach().reshape({-1}));
  auto mine = torch::cat(flat).to(torch::kFloat64);
  auto all = torch::empty({comm.size() * mine.numel()}, torch::kFloat64);
  comm.allgather(mine, all)->wait(std::chrono::minutes(1));
  auto rows = all.view({comm.size(), mine.numel()});
  return torch::equal(rows, rows[0].expand_as(rows));
}

}  // namespace

int main(int argc, char** argv) {
  ringtrain::MpiContext mpi(&argc, &argv);
  // Outside the try: on an error the job is aborted (below) before the communicator, whose
  // thread may be blocked in MPI, would be destroyed.
  std::unique_ptr<ringtrain::Communicator> comm;
  try {
    const int64_t steps = argc > 1 ? std::stoll(argv[1]) : 1500;
    torch::set_num_threads(1);
    comm = ringtrain::makeCommunicator("ring", MPI_COMM_WORLD);
    const int rank = comm->rank();

    torch::manual_seed(rank);  // deliberately different: DataParallel starts all from rank 0's
    auto generator = mlp(kNoise, 2).ptr();
    auto discriminator = mlp(2, 1).ptr();
    ringtrain::DataParallel g(*comm, generator);
    ringtrain::DataParallel d(*comm, discriminator);
    torch::optim::Adam optG(generator->parameters(),
                            torch::optim::AdamOptions(1e-3).betas({0.5, 0.999}));
    torch::optim::Adam optD(discriminator->parameters(),
                            torch::optim::AdamOptions(1e-3).betas({0.5, 0.999}));

    auto real = torch::data::datasets::TensorDataset(ringPoints(16384));
    ringtrain::ShardedSampler sampler(16384, kBatch, rank, comm->size(), /*seed=*/7);
    auto loader = torch::data::make_data_loader(
        real.map(torch::data::transforms::Stack<torch::data::TensorExample>()), sampler,
        torch::data::DataLoaderOptions().batch_size(kBatch));

    const auto bce = [](const torch::Tensor& logits, double label) {
      return torch::binary_cross_entropy_with_logits(logits, torch::full_like(logits, label));
    };
    torch::manual_seed(100 + rank);  // each rank its own noise
    int64_t step = 0;
    double lossD = 0.0, lossG = 0.0;
    while (step < steps) {
      for (auto& batch : *loader) {
        if (step == steps) break;
        auto fake = generator->forward(torch::randn({kBatch, kNoise}));

        optD.zero_grad();
        torch::Tensor realLoss;
        {
          auto local = d.noSync();
          realLoss = bce(discriminator->forward(batch.data), 1.0);
          realLoss.backward();
        }
        auto fakeLoss = bce(discriminator->forward(fake.detach()), 0.0);
        fakeLoss.backward();
        d.synchronize();
        optD.step();

        optG.zero_grad();
        torch::Tensor genLoss;
        {
          auto local = d.noSync();
          genLoss = bce(discriminator->forward(fake), 1.0);
          genLoss.backward();
        }
        g.synchronize();
        optG.step();

        lossD = (realLoss + fakeLoss).item<double>();
        lossG = genLoss.item<double>();
        if (++step % 500 == 0) {
          const double d_ = meanOverRanks(*comm, lossD), g_ = meanOverRanks(*comm, lossG);
          if (rank == 0) {
            std::cout << "step " << step << ": loss D " << d_ << ", loss G " << g_ << std::endl;
          }
        }
      }
    }

    torch::NoGradGuard noGrad;
    torch::manual_seed(99);
    auto samples = generator->forward(torch::randn({4096, kNoise}));
    auto radius = samples.norm(2, 1);
    const double mean = radius.mean().item<double>(), spread = radius.std().item<double>();
    const bool same =
        replicasIdentical(*comm, *generator) && replicasIdentical(*comm, *discriminator);
    const bool learned = std::abs(mean - kRadius) < 0.25 && spread < 0.4;
    if (rank == 0) {
      std::cout << "gan: " << comm->size() << " ranks, " << steps << " steps; generated radius "
                << mean << " +- " << spread << " (target " << kRadius << "); replicas "
                << (same ? "identical" : "DIFFER") << std::endl;
    }
    return same && learned ? 0 : 1;
  } catch (const ringtrain::Error& e) {
    std::cerr << "gan: " << e.oneLine(mpi.worldRank()) << std::endl;
  } catch (const std::exception& e) {
    std::cerr << "gan: " << e.what() << std::endl;
  }
  ringtrain::MpiContext::abortJob(1);
}
