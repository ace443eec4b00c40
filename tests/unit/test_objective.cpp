// The objective (trainer/objective.h): cross-entropy with accuracy by default, MSE for
// regression (float targets, loss only), the config's choice validated, and the Trainer's
// evaluation reporting no accuracy where none was asked for.
#include <gtest/gtest.h>

#include <cmath>

#include "core/error.h"
#include "data/csv.h"
#include "models/mlp.h"
#include "models/registry.h"
#include "trainer/config/config.h"
#include "trainer/evaluate.h"
#include "trainer/objective.h"

namespace ringtrain {
namespace {

TEST(Objective, CrossEntropyIsTheDefaultAndReportsAccuracy) {
  const auto objective = objectiveFor(TrainConfig());
  EXPECT_EQ(objective.name, "cross_entropy");
  EXPECT_TRUE(objective.accuracy);
  auto logits = torch::tensor({{2.0f, 0.0f}, {0.0f, 1.0f}});
  auto targets = torch::tensor({0, 1}, torch::kInt64);
  auto expected = torch::nn::functional::cross_entropy(
      logits, targets, torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
  EXPECT_TRUE(torch::equal(objective.perPrediction(logits, targets), expected));
}

TEST(Objective, MseComparesOneOutputPerTargetAndReportsNoAccuracy) {
  TrainConfig train;
  train.loss = "mse";
  const auto objective = objectiveFor(train);
  EXPECT_FALSE(objective.accuracy);
  auto output = torch::tensor({{1.0f}, {3.0f}});  // [2, 1]
  auto targets = torch::tensor({0.5f, 1.0f});     // [2]
  auto losses = objective.perPrediction(output, targets);
  ASSERT_EQ(losses.numel(), 2);
  EXPECT_FLOAT_EQ(losses[0].item<float>(), 0.25f);
  EXPECT_FLOAT_EQ(losses[1].item<float>(), 4.0f);
  // Integer targets are compared as float.
  EXPECT_FLOAT_EQ(objective.perPrediction(output, torch::tensor({1, 1})).sum().item<float>(), 4.0f);
  try {
    objective.perPrediction(torch::zeros({2, 3}), targets);
    FAIL() << "a [2, 3] output was accepted for 2 targets";
  } catch (const DataError& e) {
    EXPECT_NE(std::string(e.what()).find("one value per target value"), std::string::npos);
    EXPECT_NE(e.hint().find("out_features"), std::string::npos);
  }
}

TEST(Objective, AccuracyForARegressionLossIsAConfigError) {
  TrainConfig train;
  train.loss = "mse";
  train.metric = "accuracy";
  try {
    objectiveFor(train);
    FAIL() << "accuracy with mse was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(e.hint().find("train.metric: loss"), std::string::npos) << e.hint();
  }
  train.loss = "cross_entropy";
  train.metric = "loss";
  EXPECT_FALSE(objectiveFor(train).accuracy);
}

TEST(Objective, TheConfigNamesLossesAndSuggestsFixes) {
  const auto cfg = Config::fromYaml("train: {loss: mse, metric: loss}", "t.yaml");
  EXPECT_EQ(cfg.train.loss, "mse");
  try {
    Config::fromYaml("train: {loss: mae}", "t.yaml");
    FAIL() << "an unknown loss was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("train.loss"), std::string::npos) << e.what();
  }
}

TEST(Objective, CsvFloatTargetsAreFloat32) {
  const auto table = parseCsv("x,y\n1,0.5\n2,-1.25\n", "t.csv", "y", CsvTarget::Float);
  ASSERT_EQ(table.labels.scalar_type(), torch::kFloat32);
  EXPECT_FLOAT_EQ(table.labels[1].item<float>(), -1.25f);
  EXPECT_THROW(parseCsv("x,y\n1,abc\n", "t.csv", "y", CsvTarget::Float), DataError);
  // As classes, 0.5 is not a label.
  EXPECT_THROW(parseCsv("x,y\n1,0.5\n", "t.csv", "y"), DataError);
}

TEST(Objective, TheMlpModelNamesItsLayersLikeTorchNn) {
  auto model = makeModel("mlp", YAML::Load("{in_features: 3, hidden: [5, 4], out_features: 2}"));
  std::vector<std::string> names;
  for (const auto& p : model->named_parameters()) names.push_back(p.key());
  EXPECT_EQ(names, (std::vector<std::string>{"fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                                             "fc3.weight", "fc3.bias"}));
  EXPECT_EQ(model->forward(torch::zeros({7, 3})).sizes(), (std::vector<int64_t>{7, 2}));
  try {
    makeModel("mlp", YAML::Load("{in_features: 3, hiden: 5, out_features: 1}"));
    FAIL() << "a misspelt option was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("hidden"), std::string::npos) << e.what();
  }
  EXPECT_THROW(makeModel("mlp", YAML::Load("{in_features: 3}")), ConfigError);
}

TEST(Objective, EvaluationLinesLeaveOutAccuracyThatWasNotMeasured) {
  EvalResult eval;
  eval.loss = 0.5;
  eval.accuracy = 0.875;
  EXPECT_EQ(evalLine(1, 10, eval), "epoch 1  step 10  test loss 0.5000  test accuracy 87.50%");
  eval.accuracy = std::nan("");
  EXPECT_FALSE(eval.hasAccuracy());
  EXPECT_EQ(evalLine(1, 10, eval), "epoch 1  step 10  test loss 0.5000");
  EXPECT_EQ(outcomeText(0.0, eval), "final test loss 0.5000");
}

// A model that cannot take the data is a DataError naming the data, LibTorch's reason and the
// options to check, found on the first samples before training (not an internal error).
TEST(Objective, AModelThatCannotTakeTheDataIsADataError) {
  auto model = makeModel("mlp", YAML::Load("{in_features: 3, hidden: [4], out_features: 2}"));
  const auto errorOf = [&](const std::string& csv, const Objective& objective) -> std::string {
    const CsvDataset data(parseCsv(csv, "t.csv", "y"));
    try {
      checkModelTakesData(*model, data, objective, "the test data", 1);
    } catch (const DataError& e) {
      EXPECT_EQ(e.rank(), 1);
      EXPECT_NE(e.hint().find("in_features"), std::string::npos) << e.hint();
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(errorOf("a,b,c,y\n1,2,3,1\n4,5,6,0\n", crossEntropyObjective()), "");
  EXPECT_TRUE(model->is_training());  // the probe leaves the mode as it found it
  auto e = errorOf("a,b,c,d,y\n1,2,3,4,1\n", crossEntropyObjective());  // 4 features, not 3
  EXPECT_NE(e.find("the model cannot take the test data (train.loss cross_entropy): "),
            std::string::npos)
      << e;
  EXPECT_NE(e.find("1x4 and 3x4"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos) << e;  // LibTorch's first line, no backtrace
  e = errorOf("a,b,c,y\n1,2,3,5\n", crossEntropyObjective());  // class 5 of 2 outputs
  EXPECT_NE(e.find("out of bounds"), std::string::npos) << e;
  // predict itself, as training and evaluation call it.
  const Batch batch(torch::zeros({2, 3}), torch::tensor({0, 1}, torch::kInt64));
  const auto p = predict(*model, crossEntropyObjective(), batch, torch::kCPU, "x", 0);
  EXPECT_EQ(p.output.sizes(), (std::vector<int64_t>{2, 2}));
  EXPECT_EQ(p.losses.numel(), 2);
  EXPECT_THROW(predict(*model, crossEntropyObjective(), Batch(torch::zeros({2, 5}), batch.targets),
                       torch::kCPU, "x", 0),
               DataError);
}

}  // namespace
}  // namespace ringtrain
