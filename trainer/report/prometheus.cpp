#include "trainer/report/prometheus.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/error.h"

namespace ringtrain {

namespace {

// Prometheus metric names are [a-zA-Z_:][a-zA-Z0-9_:]*.
std::string metricName(const std::string& kind, const std::string& field) {
  std::string name = "ringtrain_" + kind + "_" + field;
  for (char& c : name) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') c = '_';
  }
  return name;
}

// A label value: backslash, quote and newline escaped.
std::string labelValue(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

std::string sampleValue(double value) {
  if (std::isnan(value)) return "NaN";
  if (std::isinf(value)) return value > 0 ? "+Inf" : "-Inf";
  char text[32];
  std::snprintf(text, sizeof text, "%.17g", value);
  return text;
}

void sendAll(int fd, const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    const ssize_t n = ::send(fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) return;  // the scraper went away: nothing to do about it
    sent += static_cast<size_t>(n);
  }
}

}  // namespace

OwnedFd::~OwnedFd() {
  if (fd_ >= 0) ::close(fd_);
}

OwnedFd& OwnedFd::operator=(OwnedFd&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
  }
  return *this;
}

PrometheusExporter::PrometheusExporter(PrometheusOptions options) : options_(std::move(options)) {
  if (options_.port > 0) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(options_.port));
    if (::inet_pton(AF_INET, options_.address.c_str(), &address.sin_addr) != 1) {
      throw ConfigError(
          "metrics.prometheus_address '" + options_.address + "' is not an IPv4 address",
          "use 127.0.0.1 (this host only), 0.0.0.0 (every interface) or one "
          "interface's address");
    }
    listener_ = OwnedFd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    const int yes = 1;
    ::setsockopt(listener_.get(), SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    if (listener_.get() < 0 ||
        ::bind(listener_.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0 ||
        ::listen(listener_.get(), 16) != 0) {
      throw ConfigError("cannot serve Prometheus metrics on " + options_.address + ":" +
                            std::to_string(options_.port) + ": " + std::strerror(errno),
                        "choose a free port with metrics.prometheus_port (0 turns it off)");
    }
    server_ = std::thread([this] { serve(); });
  }
  std::lock_guard<std::mutex> lock(mutex_);
  gauges_["ringtrain_restarts"] = options_.restarts;
}

PrometheusExporter::~PrometheusExporter() {
  stopping_ = true;
  if (server_.joinable()) server_.join();
}

void PrometheusExporter::record(const std::string& kind,
                                const std::vector<std::pair<std::string, double>>& fields) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& [field, value] : fields) {
      gauges_[field == "step" ? "ringtrain_step" : metricName(kind, field)] = value;
    }
  }
  writeTextfile();
}

void PrometheusExporter::checkpointWritten() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    lastCheckpoint_ = Clock::now();
  }
  writeTextfile();
}

std::string PrometheusExporter::render() const {
  std::lock_guard<std::mutex> lock(mutex_);
  auto gauges = gauges_;
  gauges["ringtrain_checkpoint_age_seconds"] =
      std::chrono::duration<double>(Clock::now() - lastCheckpoint_).count();
  const std::string labels = "{run=\"" + labelValue(options_.run) + "\"}";
  std::string text;
  for (const auto& [name, value] : gauges) {
    text += "# TYPE " + name + " gauge\n" + name + labels + " " + sampleValue(value) + "\n";
  }
  return text;
}

void PrometheusExporter::serve() {
  while (!stopping_) {
    pollfd waiting{listener_.get(), POLLIN, 0};
    // Wakes up a few times a second to see whether the run has ended.
    if (::poll(&waiting, 1, 200) <= 0) continue;
    const OwnedFd client(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (client.get() >= 0) answer(client.get());
  }
}

void PrometheusExporter::answer(int client) const {
  // The request line is all that matters; a scraper that sends nothing within a second is
  // dropped, so one slow client cannot hold the server up for long.
  std::string request;
  char buffer[2048];
  while (request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
    pollfd readable{client, POLLIN, 0};
    if (::poll(&readable, 1, 1000) <= 0) return;
    const ssize_t n = ::recv(client, buffer, sizeof buffer, 0);
    if (n <= 0) break;
    request.append(buffer, static_cast<size_t>(n));
  }
  const bool metrics = request.rfind("GET /metrics ", 0) == 0 || request.rfind("GET / ", 0) == 0;
  const std::string body = metrics ? render() : "not found: ringtrain serves /metrics\n";
  std::ostringstream response;
  response << (metrics ? "HTTP/1.1 200 OK\r\n" : "HTTP/1.1 404 Not Found\r\n")
           << "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
           << "Content-Length: " << body.size() << "\r\nConnection: close\r\n\r\n"
           << body;
  sendAll(client, response.str());
}

void PrometheusExporter::writeTextfile() const {
  if (options_.textfile.empty()) return;
  // node_exporter may read the file at any moment: write aside, then rename over it.
  const std::string temporary = options_.textfile + ".tmp." + std::to_string(::getpid());
  {
    std::ofstream out(temporary, std::ios::trunc);
    out << render();
    if (!out) {
      throw Error("cannot write metrics.prometheus_textfile " + temporary,
                  "give it a writable path (node_exporter's --collector.textfile.directory)");
    }
  }
  if (std::rename(temporary.c_str(), options_.textfile.c_str()) != 0) {
    throw Error("cannot rename " + temporary + " to " + options_.textfile,
                "give metrics.prometheus_textfile a writable directory");
  }
}

}  // namespace ringtrain
