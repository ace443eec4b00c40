// GradientSynchronizer in one process: bucket planning, and the hook machinery (overlap,
// launch order, accumulation, unused parameters, compression) against a fake communicator
// that plays `size` ranks holding identical gradients.
#include <gtest/gtest.h>

#include <cstring>
#include <string>
#include <vector>

#include "core/error.h"
#include "trainer/allreduce/grad_sync.h"

namespace ringtrain {
namespace {

class DoneWork : public Work {
 public:
  bool isCompleted() override { return true; }
  void wait(std::chrono::milliseconds) override {}
  std::string describe() const override { return "done"; }
};

// All-reduce over `size` ranks that all hold the caller's tensor: the sum is size x tensor.
// Records every launch in `log` (shared with the test, which may add its own entries).
class FakeComm : public Communicator {
 public:
  FakeComm(int size, std::vector<std::string>* log) : size_(size), log_(log) {}
  int rank() const override { return 0; }
  int size() const override { return size_; }
  std::string backendName() const override { return "fake"; }
  WorkPtr allreduce(torch::Tensor& tensor, const std::string& tag, ReduceOp op) override {
    if (log_) log_->push_back("launch " + tag);
    dtypes.push_back(tensor.scalar_type());
    ops.push_back(op);
    // size_ ranks holding this tensor: each scales (Average), then they are added up.
    if (op == ReduceOp::Average) tensor.mul_(1.0 / size_);
    const torch::Tensor share = tensor.clone();
    for (int r = 1; r < size_; ++r) tensor.add_(share);
    ++launches;
    return std::make_shared<DoneWork>();
  }
  WorkPtr broadcast(torch::Tensor&, int) override { return std::make_shared<DoneWork>(); }
  WorkPtr allgather(const torch::Tensor&, torch::Tensor&) override {
    return std::make_shared<DoneWork>();
  }
  void barrier() override {}

  int launches = 0;
  std::vector<torch::ScalarType> dtypes;
  std::vector<ReduceOp> ops;

 private:
  int size_;
  std::vector<std::string>* log_;
};

// Four 64x64 layers (16 KiB weights) and an optional parameter that forward never uses.
struct Chain : torch::nn::Module {
  explicit Chain(bool withUnused = false) {
    for (int i = 0; i < 4; ++i) {
      layers.push_back(register_module("fc" + std::to_string(i), torch::nn::Linear(64, 64)));
    }
    if (withUnused) unused = register_parameter("unused", torch::ones({5}));
  }
  torch::Tensor forward(torch::Tensor x) {
    for (auto& l : layers) x = torch::tanh(l->forward(x));
    return x;
  }
  std::vector<torch::nn::Linear> layers;
  torch::Tensor unused;
};

std::shared_ptr<Chain> makeChain(bool withUnused = false) {
  torch::manual_seed(11);
  return std::make_shared<Chain>(withUnused);
}

void backwardOn(Chain& model, int64_t seed) {
  torch::manual_seed(seed);
  model.forward(torch::randn({8, 64})).pow(2).sum().backward();
}

GradSyncOptions smallBuckets(bool overlap, GradCompression c = GradCompression::None) {
  GradSyncOptions o;
  o.bucketMb = 0.02;  // one 64x64 weight (16 KiB) and its bias per bucket
  o.overlap = overlap;
  o.compression = c;
  return o;
}

bool bitwiseEqual(const torch::Tensor& a, const torch::Tensor& b) {
  if (a.sizes() != b.sizes() || a.scalar_type() != b.scalar_type()) return false;
  auto x = a.contiguous();
  auto y = b.contiguous();
  return std::memcmp(x.data_ptr(), y.data_ptr(), x.numel() * x.element_size()) == 0;
}

int bucketNumber(const std::string& tag) {  // "launch step 3, gradient bucket 2 of 4" -> 2
  const auto at = tag.find("bucket ");
  return at == std::string::npos ? -1 : std::stoi(tag.substr(at + 7));
}

TEST(PlanBuckets, ReverseRegistrationOrderWithSmallFirstBucket) {
  // 4 B floats: 0.5 MiB, 0.5 MiB, 1 MiB, 0.25 MiB, 2 MiB in registration order.
  std::vector<torch::Tensor> params = {torch::zeros({131072}), torch::zeros({131072}),
                                       torch::zeros({262144}), torch::zeros({65536}),
                                       torch::zeros({524288})};
  const auto buckets = planBuckets(params, /*bucketMb=*/1.5, /*firstBucketMb=*/1.0);
  // The last parameter alone exceeds the 1 MiB first bucket, so it is a bucket of its own.
  ASSERT_EQ(buckets.size(), 3u);
  EXPECT_EQ(buckets[0].parameterIndices, (std::vector<size_t>{4}));
  EXPECT_EQ(buckets[1].parameterIndices, (std::vector<size_t>{3, 2}));
  EXPECT_EQ(buckets[2].parameterIndices, (std::vector<size_t>{1, 0}));
  EXPECT_EQ(buckets[1].offsets, (std::vector<int64_t>{0, 65536}));
  EXPECT_EQ(buckets[1].numel, 65536 + 262144);
  std::vector<int> seen(params.size(), 0);
  for (const auto& b : buckets) {
    for (size_t k : b.parameterIndices) ++seen[k];
  }
  EXPECT_EQ(seen, std::vector<int>(params.size(), 1));
}

TEST(PlanBuckets, NeverMixesDtypesAndHandlesEmptyLists) {
  std::vector<torch::Tensor> params = {torch::zeros({4}), torch::zeros({4}, torch::kFloat64),
                                       torch::zeros({4}, torch::kFloat64)};
  const auto buckets = planBuckets(params, 25.0);
  ASSERT_EQ(buckets.size(), 2u);
  EXPECT_EQ(buckets[0].dtype, torch::kFloat64);
  EXPECT_EQ(buckets[0].parameterIndices, (std::vector<size_t>{2, 1}));
  EXPECT_EQ(buckets[1].dtype, torch::kFloat32);
  EXPECT_TRUE(planBuckets({}, 25.0).empty());
}

TEST(GradCompression, ParsesConfigNamesAndRejectsOthers) {
  EXPECT_EQ(parseGradCompression("none"), GradCompression::None);
  EXPECT_EQ(parseGradCompression("bf16"), GradCompression::BFloat16);
  EXPECT_EQ(parseGradCompression("fp16"), GradCompression::Float16);
  EXPECT_THROW(parseGradCompression("int8"), ConfigError);
}

TEST(GradientSynchronizer, OverlapLaunchesBucketsWhileBackwardRuns) {
  auto model = makeChain();
  FakeComm comm(2, nullptr);
  GradientSynchronizer sync(comm, model->parameters(), smallBuckets(true));
  ASSERT_EQ(sync.layout().size(), 4u);
  ASSERT_TRUE(sync.overlapping());
  // fc0 is registered first, so its gradient comes last (this tensor hook runs before
  // autograd accumulates it into .grad, so before the synchronizer's hook for it): by then
  // the buckets of the later layers must be on their way, i.e. communication started while
  // backward ran.
  int launchesBeforeLastGradient = -1;
  bool lastGradientStored = true;
  model->layers[0]->weight.register_hook([&](torch::Tensor) {
    launchesBeforeLastGradient = comm.launches;
    const auto& grad = model->layers[0]->weight.grad();  // the (zeroed) bucket slice
    lastGradientStored = grad.defined() && grad.abs().sum().item<float>() != 0.0f;
  });
  backwardOn(*model, 1);
  EXPECT_FALSE(lastGradientStored);
  EXPECT_GE(launchesBeforeLastGradient, 2);
  EXPECT_EQ(comm.launches, 4);  // every bucket completed during backward
  sync.synchronize(0);
  EXPECT_EQ(sync.bucketsLaunchedDuringBackward(), 4);
  EXPECT_EQ(comm.launches, 4);
}

TEST(GradientSynchronizer, OverlapGivesBitwiseTheSameGradientsAsPostBackward) {
  // Three fake ranks: the 1/3 scale rounds, so any difference in what is packed would show.
  auto overlapped = makeChain();
  auto postBackward = makeChain();
  FakeComm commA(3, nullptr);
  FakeComm commB(3, nullptr);
  GradientSynchronizer a(commA, overlapped->parameters(), smallBuckets(true));
  GradientSynchronizer b(commB, postBackward->parameters(), smallBuckets(false));
  torch::optim::SGD optA(overlapped->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  torch::optim::SGD optB(postBackward->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  for (int step = 0; step < 4; ++step) {
    const int micro = 1 + step % 3;  // 1, 2 and 3 micro-batches per step
    for (int m = 0; m < micro; ++m) {
      a.prepareBackward(step, m + 1 == micro);
      b.prepareBackward(step, m + 1 == micro);
      backwardOn(*overlapped, 10 * step + m);
      backwardOn(*postBackward, 10 * step + m);
    }
    a.synchronize(step);
    b.synchronize(step);
    const auto pa = overlapped->parameters();
    const auto pb = postBackward->parameters();
    for (size_t i = 0; i < pa.size(); ++i) {
      ASSERT_TRUE(bitwiseEqual(pa[i].grad(), pb[i].grad()))
          << "parameter " << i << " step " << step;
    }
    optA.step();
    optB.step();
    optA.zero_grad();
    optB.zero_grad();
  }
  EXPECT_EQ(commA.launches, commB.launches);
  EXPECT_GT(a.bucketsLaunchedDuringBackward(), 0);
  EXPECT_EQ(b.bucketsLaunchedDuringBackward(), 0);
}

TEST(GradientSynchronizer, AccumulationMicroBatchesSendNothingAndSumTheirGradients) {
  auto model = makeChain();
  auto reference = makeChain();
  FakeComm comm(2, nullptr);
  GradientSynchronizer sync(comm, model->parameters(), smallBuckets(true));
  for (int m = 0; m < 3; ++m) {
    sync.prepareBackward(0, m == 2);
    backwardOn(*model, m);
    backwardOn(*reference, m);  // plain accumulation in .grad
    if (m < 2) {
      EXPECT_EQ(comm.launches, 0) << "micro-batch " << m;
    }
  }
  EXPECT_EQ(comm.launches, 4);
  sync.synchronize(0);
  const auto p = model->parameters();
  const auto r = reference->parameters();
  for (size_t i = 0; i < p.size(); ++i) {
    // Two identical fake ranks: the average of the accumulated gradient is itself, exactly
    // (the 1/2 scale and x2 sum are exact in binary floating point).
    EXPECT_TRUE(bitwiseEqual(p[i].grad(), r[i].grad())) << "parameter " << i;
  }
}

TEST(GradientSynchronizer, BucketsLaunchInIndexOrderEvenWhenCompletedOutOfOrder) {
  // loss = sum((x * b) * a): backward reaches `a` before `b`. Registered [a, b], so bucket 1
  // holds b (filled first in reverse order) and bucket 2 holds a.
  auto a = torch::full({4}, 2.0, torch::requires_grad());
  auto b = torch::full({4}, 3.0, torch::requires_grad());
  std::vector<std::string> log;
  FakeComm comm(2, &log);
  GradSyncOptions options;
  options.bucketMb = 1e-5;  // 10 bytes: one 16-byte parameter per bucket
  GradientSynchronizer sync(comm, {a, b}, options);
  ASSERT_EQ(sync.layout().size(), 2u);
  ASSERT_EQ(sync.layout()[0].parameterIndices, (std::vector<size_t>{1}));
  a.register_hook([&](torch::Tensor) { log.push_back("grad a"); });
  b.register_hook([&](torch::Tensor) { log.push_back("grad b"); });
  ((torch::ones({4}) * b) * a).sum().backward();
  sync.synchronize(0);
  ASSERT_EQ(log.size(), 4u);
  // The tensor hooks run before each gradient is accumulated, the synchronizer's after: a's
  // bucket (2) was complete before b's gradient existed, but waited for bucket 1.
  EXPECT_EQ(log[0], "grad a");
  EXPECT_EQ(log[1], "grad b");
  EXPECT_EQ(bucketNumber(log[2]), 1);
  EXPECT_EQ(bucketNumber(log[3]), 2);
  EXPECT_TRUE(torch::allclose(a.grad(), torch::full({4}, 3.0)));
  EXPECT_TRUE(torch::allclose(b.grad(), torch::full({4}, 2.0)));
}

TEST(GradientSynchronizer, ParameterWithoutGradientDoesNotHangAndGetsZeros) {
  for (const bool overlap : {true, false}) {
    auto model = makeChain(/*withUnused=*/true);
    std::vector<std::string> log;
    FakeComm comm(2, &log);
    GradientSynchronizer sync(comm, model->parameters(), smallBuckets(overlap));
    backwardOn(*model, 3);
    const auto& unusedGrad = model->unused.grad();  // untouched: undefined or a zero slice
    ASSERT_TRUE(!unusedGrad.defined() || unusedGrad.abs().sum().item<float>() == 0.0f);
    sync.synchronize(7);
    ASSERT_EQ(static_cast<size_t>(comm.launches), sync.layout().size());
    for (size_t i = 0; i < log.size(); ++i) {
      EXPECT_EQ(bucketNumber(log[i]), static_cast<int>(i) + 1) << log[i];
      EXPECT_NE(log[i].find("step"), std::string::npos);
    }
    ASSERT_TRUE(model->unused.grad().defined());
    EXPECT_EQ(model->unused.grad().abs().sum().item<float>(), 0.0f);
    // The bucket holding the unused parameter could only go out after backward.
    if (overlap) {
      EXPECT_LT(sync.bucketsLaunchedDuringBackward(), comm.launches);
    }
  }
}

TEST(GradientSynchronizer, GradIsTheBucketSliceAndIsRestoredAfterSetToNone) {
  for (const bool overlap : {true, false}) {
    auto model = makeChain();
    auto reference = makeChain();
    FakeComm comm(2, nullptr);
    GradientSynchronizer sync(comm, model->parameters(), smallBuckets(overlap));
    const auto p = model->parameters();
    const auto r = reference->parameters();
    std::vector<void*> slices;
    for (const auto& t : p) {
      ASSERT_TRUE(t.grad().defined());  // the zeroed slice, before any backward
      slices.push_back(t.grad().data_ptr());
    }
    torch::optim::SGD optimizer(p, torch::optim::SGDOptions(0.1));
    for (int step = 0; step < 3; ++step) {
      if (step == 2) {
        // What LibTorch 2.x's zero_grad() does by default: the next backward stores a fresh
        // tensor in .grad, which must still be averaged and land back in the bucket.
        for (const auto& t : p) t.mutable_grad() = torch::Tensor();
      }
      for (const auto& t : r) t.mutable_grad() = torch::Tensor();
      backwardOn(*model, step);
      backwardOn(*reference, step);
      sync.synchronize(step);
      for (size_t i = 0; i < p.size(); ++i) {
        // Two identical fake ranks: the average is the gradient itself, exactly.
        EXPECT_TRUE(bitwiseEqual(p[i].grad(), r[i].grad())) << "parameter " << i;
        EXPECT_EQ(p[i].grad().data_ptr(), slices[i]) << "parameter " << i << " step " << step;
      }
      optimizer.zero_grad();  // LibTorch 1.13: detach_() and zero_() in place
      for (size_t i = 0; i < p.size(); ++i) {
        torch::NoGradGuard noGrad;
        p[i].copy_(r[i]);  // keep both models' parameters equal for the next step
      }
    }
  }
}

TEST(GradientSynchronizer, SecondBackwardBeforeItsBucketWasSentThrowsToo) {
  // One bucket that never completes during backward (it holds the unused parameter), so
  // nothing was sent: the second backward's first gradient reaches a parameter already packed
  // (scaled in place in its .grad) and must not be mixed into it.
  auto model = makeChain(/*withUnused=*/true);
  FakeComm comm(2, nullptr);
  GradSyncOptions options = smallBuckets(false);
  options.overlap = true;
  options.bucketMb = 25.0;
  options.firstBucketMb = 25.0;
  GradientSynchronizer sync(comm, model->parameters(), options);
  backwardOn(*model, 1);
  EXPECT_THROW(backwardOn(*model, 2), TrainingError);
}

TEST(GradientSynchronizer, SecondBackwardAfterItsBucketWasSentThrows) {
  auto model = makeChain();
  FakeComm comm(2, nullptr);
  GradientSynchronizer sync(comm, model->parameters(), smallBuckets(true));
  backwardOn(*model, 1);
  EXPECT_THROW(backwardOn(*model, 2), TrainingError);
}

TEST(GradientSynchronizer, CompressionSendsSixteenBitBucketsCloseToFloat32) {
  for (const auto c : {GradCompression::BFloat16, GradCompression::Float16}) {
    auto model = makeChain();
    auto reference = makeChain();
    FakeComm comm(2, nullptr);
    FakeComm refComm(2, nullptr);
    GradientSynchronizer sync(comm, model->parameters(), smallBuckets(true, c));
    GradientSynchronizer refSync(refComm, reference->parameters(), smallBuckets(true));
    backwardOn(*model, 5);
    backwardOn(*reference, 5);
    sync.synchronize(0);
    refSync.synchronize(0);
    for (const auto dtype : comm.dtypes) {
      EXPECT_EQ(dtype, c == GradCompression::BFloat16 ? torch::kBFloat16 : torch::kHalf);
    }
    // A compressed bucket is scaled while it is cast (so fp16 cannot overflow on the wire) and
    // then summed; buckets of .grad slices leave the scale to the all-reduce.
    for (const auto op : comm.ops) EXPECT_EQ(op, ReduceOp::Sum);
    ASSERT_FALSE(refComm.ops.empty());
    for (const auto op : refComm.ops) EXPECT_EQ(op, ReduceOp::Average);
    const auto p = model->parameters();
    const auto r = reference->parameters();
    for (size_t i = 0; i < p.size(); ++i) {
      EXPECT_EQ(p[i].grad().scalar_type(), torch::kFloat32);
      const double err = (p[i].grad() - r[i].grad()).abs().max().item<double>();
      const double mag = r[i].grad().abs().max().item<double>();
      EXPECT_LE(err, (c == GradCompression::BFloat16 ? 1e-2 : 1e-3) * mag) << "parameter " << i;
      EXPECT_FALSE(bitwiseEqual(p[i].grad(), r[i].grad())) << "no rounding at all?";
    }
  }
}

TEST(GradientSynchronizer, Fp16GradientBeyondItsRangeBecomesInfOnEveryRank) {
  auto w = torch::ones({3}, torch::requires_grad());
  FakeComm comm(2, nullptr);
  GradSyncOptions options;
  options.compression = GradCompression::Float16;
  GradientSynchronizer sync(comm, {w}, options);
  (w * torch::tensor({1.0f, 1e3f, 1e6f})).sum().backward();  // 1e6 / 2 > 65504
  sync.synchronize(0);
  EXPECT_FLOAT_EQ(w.grad()[0].item<float>(), 1.0f);
  EXPECT_FLOAT_EQ(w.grad()[1].item<float>(), 1000.0f);
  EXPECT_TRUE(std::isinf(w.grad()[2].item<float>()));
}

TEST(GradientSynchronizer, DestructorRemovesTheHooks) {
  auto model = makeChain();
  FakeComm comm(2, nullptr);
  { GradientSynchronizer sync(comm, model->parameters(), smallBuckets(true)); }
  backwardOn(*model, 1);
  backwardOn(*model, 2);
  EXPECT_EQ(comm.launches, 0);
}

TEST(GradientSynchronizer, OneRankIsTheIdentityWithoutHooks) {
  auto model = makeChain(/*withUnused=*/true);
  auto reference = makeChain(/*withUnused=*/true);
  FakeComm comm(1, nullptr);
  GradSyncOptions options = smallBuckets(true, GradCompression::BFloat16);
  GradientSynchronizer sync(comm, model->parameters(), options);
  EXPECT_FALSE(sync.overlapping());
  backwardOn(*model, 4);
  backwardOn(*reference, 4);
  sync.synchronize(0);
  EXPECT_EQ(comm.launches, 0);
  const auto p = model->parameters();
  const auto r = reference->parameters();
  for (size_t i = 0; i < p.size(); ++i) {
    ASSERT_TRUE(p[i].grad().defined());
    if (r[i].grad().defined()) {
      EXPECT_TRUE(bitwiseEqual(p[i].grad(), r[i].grad()));
    }
  }
}

TEST(GradientSynchronizer, FrozenParametersAreLeftAlone) {
  auto model = makeChain();
  model->layers[1]->weight.requires_grad_(false);
  FakeComm comm(2, nullptr);
  GradientSynchronizer sync(comm, model->parameters(), smallBuckets(true));
  for (const auto& b : sync.layout()) {
    for (size_t k : b.parameterIndices) EXPECT_TRUE(model->parameters()[k].requires_grad());
  }
  backwardOn(*model, 1);
  sync.synchronize(0);
  EXPECT_FALSE(model->layers[1]->weight.grad().defined());
  EXPECT_TRUE(model->layers[1]->bias.grad().defined());
}

}  // namespace
}  // namespace ringtrain
