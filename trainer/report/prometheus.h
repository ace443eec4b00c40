// Prometheus metrics of a run, from the replicas' rank 0, in the text exposition format
// (version 0.0.4): served over HTTP at /metrics (metrics.prometheus_port, on loopback unless
// metrics.prometheus_address says otherwise) and/or written to a file for node_exporter's
// textfile collector (metrics.prometheus_textfile, replaced atomically at each update).
//
// Every field of every metrics.jsonl record becomes a gauge ringtrain_<kind>_<field>
// (ringtrain_train_loss, ringtrain_train_slowest_rank, ringtrain_eval_test_accuracy, ...),
// beside ringtrain_step, ringtrain_checkpoint_age_seconds and ringtrain_restarts; each carries
// the label run="<train.run_name>".
#pragma once

#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace ringtrain {

// A file descriptor that closes itself.
class OwnedFd {
 public:
  explicit OwnedFd(int fd = -1) : fd_(fd) {}
  ~OwnedFd();
  OwnedFd(OwnedFd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
  OwnedFd& operator=(OwnedFd&& other) noexcept;
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

struct PrometheusOptions {
  int port = 0;                       // 0: no HTTP server
  std::string address = "127.0.0.1";  // where the server listens
  std::string textfile;               // "": no file
  std::string run;                    // the run label
  double restarts = 0;                // restarts of this job so far (the supervisor's count)
};

class PrometheusExporter {
 public:
  // Binds the port (throws ConfigError when it cannot: in use, or a bad address) and starts
  // the server thread.
  explicit PrometheusExporter(PrometheusOptions options);
  ~PrometheusExporter();  // stops and joins the server thread
  PrometheusExporter(const PrometheusExporter&) = delete;
  PrometheusExporter& operator=(const PrometheusExporter&) = delete;

  // A metrics.jsonl record: sets its gauges, then rewrites the textfile.
  void record(const std::string& kind, const std::vector<std::pair<std::string, double>>& fields);
  // The run wrote (or resumed from) a checkpoint now: the checkpoint age restarts from 0.
  void checkpointWritten();
  // The exposition text, as served.
  std::string render() const;

 private:
  void serve();
  void answer(int client) const;
  void writeTextfile() const;

  using Clock = std::chrono::steady_clock;
  PrometheusOptions options_;
  mutable std::mutex mutex_;
  std::map<std::string, double> gauges_;
  Clock::time_point lastCheckpoint_ = Clock::now();
  OwnedFd listener_;
  std::atomic<bool> stopping_{false};
  std::thread server_;  // last: joined before the members it reads go
};

}  // namespace ringtrain
