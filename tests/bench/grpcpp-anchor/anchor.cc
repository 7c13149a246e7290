// grpcpp-anchor: grpc C++'s stock default health service (EnableDefaultHealthCheckService)
// for the dubbo-health benchmark. Registers the names given with --set NAME=STATUS, prints
// "listening ADDR" on stderr once bound, and reads "set NAME STATUS" / "clear NAME" lines on
// stdin ("" is the empty name). The default service knows only SERVING and NOT_SERVING, so
// any other status is served as NOT_SERVING. Exits when stdin closes.
#include <grpcpp/ext/health_check_service_server_builder_option.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>

#include <iostream>
#include <memory>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "noop.grpc.pb.h"

namespace {

class NoopService final : public dubbo_health::bench::Noop::CallbackService {
  grpc::ServerUnaryReactor* Ping(grpc::CallbackServerContext* ctx, const dubbo_health::bench::Empty*,
                                 dubbo_health::bench::Empty*) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

std::string Unquote(const std::string& name) { return name == "\"\"" ? std::string() : name; }

bool ParseStatus(const std::string& s, bool* serving) {
  if (s == "SERVING") {
    *serving = true;
    return true;
  }
  if (s == "NOT_SERVING" || s == "UNKNOWN") {
    *serving = false;
    return true;
  }
  return false;
}

}  // namespace

int main(int argc, char** argv) {
  std::string addr = "127.0.0.1:0";
  std::vector<std::pair<std::string, bool>> sets;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--addr" || arg == "--set") && i + 1 < argc) {
      std::string value = argv[++i];
      if (arg == "--addr") {
        addr = value;
        continue;
      }
      auto eq = value.rfind('=');
      bool serving = false;
      if (eq == std::string::npos || !ParseStatus(value.substr(eq + 1), &serving)) {
        std::cerr << "bad --set " << value << ": want NAME=SERVING|NOT_SERVING\n";
        return 1;
      }
      sets.emplace_back(Unquote(value.substr(0, eq)), serving);
    } else {
      std::cerr << "usage: grpcpp-anchor [--addr HOST:PORT] [--set NAME=STATUS]...\n";
      return 1;
    }
  }

  grpc::EnableDefaultHealthCheckService(true);
  NoopService noop;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort(addr, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&noop);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::cerr << "cannot start the server on " << addr << "\n";
    return 2;
  }
  grpc::HealthCheckServiceInterface* health = server->GetHealthCheckService();
  for (const auto& [name, serving] : sets) health->SetServingStatus(name, serving);

  std::string host = addr.substr(0, addr.rfind(':'));
  std::cerr << "listening " << host << ":" << port << std::endl;

  std::string line;
  while (std::getline(std::cin, line)) {
    std::istringstream in(line);
    std::string cmd, name, status;
    in >> cmd >> name >> status;
    bool serving = false;
    if (cmd == "set" && !name.empty() && ParseStatus(status, &serving)) {
      health->SetServingStatus(Unquote(name), serving);
    } else if (cmd == "clear" && !name.empty()) {
      health->SetServingStatus(Unquote(name), false);
    } else if (!cmd.empty()) {
      std::cerr << "unknown command: " << line << "\n";
    }
  }
  server->Shutdown();
  return 0;
}
