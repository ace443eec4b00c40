// Experiment configuration: a YAML file with the sections model, data, optimizer,
// schedule, train, distributed and checkpoint. Every key has a schema entry (type and
// default); unknown keys and wrong types are ConfigErrors that name the key and suggest
// the closest valid one. The resolved config (defaults filled in, --set overrides applied)
// is what a run saves next to its metrics and checkpoints.
#pragma once

#include "data/data_config.h"

#include <yaml-cpp/yaml.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

namespace ringtrain {

struct ModelConfig {
  std::string name = "fashion_cnn";
  YAML::Node options;  // model.options: free-form map passed to the model factory
};

struct OptimizerConfig {
  std::string name = "sgd";  // sgd | adam | adamw
  double lr = 0.05;
  double momentum = 0.9;
  bool nesterov = false;
  double weight_decay = 0.0;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
};

struct ScheduleConfig {
  std::string name = "constant";  // constant | step | cosine
  int64_t warmup_steps = 0;       // linear warm-up from 0 to optimizer.lr
  int64_t step_size = 1000;       // step: multiply by gamma every step_size steps
  double gamma = 0.1;
  double min_lr = 0.0;  // cosine: final learning rate
};

struct TrainConfig {
  std::string run_name;  // runs/<run_name>; default: the config file's stem
  int64_t epochs = 3;
  int64_t max_steps = 0;  // 0 = no limit; otherwise stop after this many steps
  uint64_t seed = 42;
  int64_t log_every = 50;            // steps between progress lines / metrics records
  double grad_clip_norm = 0.0;       // 0 = off
  int64_t threads = 0;               // intra-op threads per rank; 0 = cores / local ranks
  int64_t check_replicas_every = 0;  // debug: compare parameter hashes every K steps
  bool retain_host_memory = true;  // keep freed CPU memory for reuse (trainer/host/host_process.h)
  int64_t grad_accumulation = 1;   // micro-batches per optimizer step
  std::string on_nonfinite = "abort";  // abort | skip
  std::string precision = "fp32";      // fp32 | bf16
  double straggler_ratio = 1.5;        // warn when a rank's work per step is this x the others'
  std::string loss = "cross_entropy";  // cross_entropy | mse (trainer/objective.h)
  std::string metric = "auto";         // auto | accuracy | loss: what evaluation reports
  // Audit: a directory where every rank appends the dataset indices of each batch it
  // trains on (rank-R.txt: "epoch step index..."); "" = off.
  std::string sample_log;
  // "steps A-B": every rank writes a Chrome trace of steps A..B (1-based, inclusive) to
  // <run dir>/timeline/ (trainer/report/timeline.h); "" = off.
  std::string timeline;
};

struct DistributedConfig {
  std::string backend = "ring";    // ring | mpi | nccl
  std::string mode = "allreduce";  // allreduce | ps
  double bucket_mb = 25.0;
  bool overlap = true;
  bool shared_memory = true;         // ring on one node: buckets in a shared-memory window
  std::string compression = "none";  // none | bf16 | fp16
  // ZeRO stage: 0 (every rank keeps all optimizer state) or 1 (each keeps 1/N of it,
  // trainer/allreduce/zero_optimizer.h).
  int64_t zero = 0;
  double timeout_s = 300.0;
  int64_t fingerprint_every = 1000;  // steps between model fingerprint checks (0: start only)

  // timeout_s as the deadline a collective waits for.
  std::chrono::milliseconds timeout() const {
    return std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000.0));
  }
};

// Parameter-server mode (distributed.mode: ps): see trainer/ps/push_pull_sync.h and serve.h.
struct PsConfig {
  int64_t servers = 1;              // K ranks serve parameters; the rest are workers
  std::string placement = "last";   // which ranks serve: last | first | spread
  std::string consistency = "bsp";  // bsp | asp | ssp
  int64_t staleness = 2;            // ssp: steps a worker may run ahead of the slowest
};

struct CheckpointConfig {
  int64_t every_steps = 0;  // 0 = only at epoch ends and at the end of training
  int64_t keep_last = 3;
  bool enabled = true;
};

// What rank 0 writes besides metrics.jsonl (docs/configuration.md, "metrics").
struct MetricsConfig {
  bool tensorboard = false;                      // TensorBoard event files in the run directory
  int64_t prometheus_port = 0;                   // 0 = no HTTP server for Prometheus
  std::string prometheus_address = "127.0.0.1";  // where that server listens
  std::string prometheus_textfile;               // "" = none; else node_exporter's textfile
};

struct Config {
  ModelConfig model;
  DataConfig data;
  OptimizerConfig optimizer;
  ScheduleConfig schedule;
  TrainConfig train;
  DistributedConfig distributed;
  PsConfig ps;
  CheckpointConfig checkpoint;
  MetricsConfig metrics;

  // Parses YAML text (as read from `sourceName`, used in messages) and applies overrides
  // of the form "section.key=value". Throws ConfigError.
  static Config fromYaml(const std::string& yamlText, const std::string& sourceName,
                         const std::vector<std::string>& overrides = {});
  static Config fromFile(const std::string& path, const std::vector<std::string>& overrides = {});

  // The fully resolved config, every key present, as YAML text that fromYaml accepts.
  std::string toYaml() const;
  // "section.key: value" for every key that all ranks of a job must agree on (the schema's
  // keys but those marked per-rank), in schema order; maps in YAML flow style.
  std::vector<std::string> agreedLines() const;
};

// train.run_name names one directory under runs/: a single path component, not "." or
// "..". Throws ConfigError otherwise (a path goes in --run-dir).
void checkRunName(const std::string& name, int rank = -1);

// Throws ConfigError (naming `source`) if YAML text holds an alias (*name), which lets a few
// bytes stand for billions of nodes once walked, or more nodes than any config has. Every
// config text ringtrain parses, a checkpoint's included, goes through it first.
void checkYamlBounds(const std::string& text, const std::string& source);

}  // namespace ringtrain
