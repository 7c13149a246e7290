// An example grpc++ host: its own Greeter service plus grpc.health.v1.Health from
// libdubbo_health, on one port.
//
//   grpcpp-host [ADDR]        (default 127.0.0.1:0; prints "listening 127.0.0.1:PORT")
//
// Statuses are driven by lines on stdin, so a test (or an operator) can flip them:
//   set NAME STATUS   STATUS is SERVING, NOT_SERVING or UNKNOWN; "" is the empty name
//   clear NAME | shutdown | resume | quit
// Each command is answered with "ok" or "error: <message>" on stdout.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include <grpcpp/grpcpp.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include "dubbo_health.h"
#include "greeter.grpc.pb.h"
#include "health_service.h"

namespace {

const char kGreeter[] = "dubbo.example.Greeter";

class GreeterImpl final : public dubbo::example::Greeter::CallbackService {
  grpc::ServerUnaryReactor* SayHello(grpc::CallbackServerContext* ctx, const dubbo::example::HelloRequest* req,
                                     dubbo::example::HelloReply* reply) override {
    reply->set_message("Hello " + req->name());
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

std::string Unquote(const std::string& word) { return word == "\"\"" ? std::string() : word; }

bool ParseStatus(const std::string& text, dh_status* out) {
  if (text == "SERVING") *out = DH_STATUS_SERVING;
  else if (text == "NOT_SERVING") *out = DH_STATUS_NOT_SERVING;
  else if (text == "UNKNOWN") *out = DH_STATUS_UNKNOWN;
  else return false;
  return true;
}

std::string Error(dh_result rc) {
  char buf[512];
  size_t len = 0;
  std::string text = dh_result_name(rc);
  if (dh_last_error_message(buf, sizeof buf, &len) == DH_OK) text += std::string(": ") + std::string(buf, len);
  return text;
}

std::string Run(const dh_registry* reg, const std::string& line, bool* quit) {
  std::istringstream in(line);
  std::string cmd, name, status;
  in >> cmd >> name >> status;
  name = Unquote(name);
  const auto* n = reinterpret_cast<const uint8_t*>(name.data());
  dh_result rc = DH_OK;
  if (cmd == "set") {
    dh_status st;
    if (!ParseStatus(status, &st)) return "error: unknown status " + status;
    rc = dh_set(reg, n, name.size(), st, nullptr);
  } else if (cmd == "clear") {
    rc = dh_clear(reg, n, name.size(), nullptr);
  } else if (cmd == "shutdown") {
    rc = dh_shutdown(reg);
  } else if (cmd == "resume") {
    rc = dh_resume(reg);
  } else if (cmd == "quit") {
    *quit = true;
  } else if (!cmd.empty()) {
    return "error: unknown command " + cmd;
  }
  return rc == DH_OK ? "ok" : "error: " + Error(rc);
}

}  // namespace

int main(int argc, char** argv) {
#if defined(__GLIBC__)
  // gRPC serves calls from many threads, and glibc gives each its own malloc arena, so
  // after bursts of thousands of streams the RSS keeps creeping up (freed memory stays in
  // per-thread arenas; nothing leaks). One arena keeps it flat, which matters more than
  // allocation speed for a health endpoint. MALLOC_ARENA_MAX in the environment wins.
  if (std::getenv("MALLOC_ARENA_MAX") == nullptr) mallopt(M_ARENA_MAX, 1);
#endif
  const std::string addr = argc > 1 ? argv[1] : "127.0.0.1:0";
  if (std::strcmp(dh_version(), DH_VERSION) != 0) {
    std::fprintf(stderr, "libdubbo_health %s does not match its header %s\n", dh_version(), DH_VERSION);
    return 1;
  }
  dh_registry* reg = nullptr;
  if (dh_registry_new(&reg) != DH_OK) return 1;
  dh_set(reg, reinterpret_cast<const uint8_t*>(kGreeter), std::strlen(kGreeter), DH_STATUS_SERVING, nullptr);

  GreeterImpl greeter;
  DubboHealthService health(reg);
  int port = 0;
  grpc::ServerBuilder builder;
  builder.AddListeningPort(addr, grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&greeter);
  builder.RegisterCallbackGenericService(&health);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  if (!server || port == 0) {
    std::fprintf(stderr, "cannot listen on %s\n", addr.c_str());
    return 2;
  }
  const std::string host = addr.substr(0, addr.rfind(':'));
  std::printf("listening %s:%d\n", host.c_str(), port);
  std::fflush(stdout);

  bool quit = false;
  std::string line;
  while (!quit && std::getline(std::cin, line)) {
    std::printf("%s\n", Run(reg, line, &quit).c_str());
    std::fflush(stdout);
  }

  // Graceful stop: report NOT_SERVING, end every Watch stream (they finish with OK), then
  // let in-flight calls finish for up to a second.
  dh_shutdown(reg);
  dh_end_watches(reg);
  server->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
  server->Wait();
  dh_registry_free(reg);
  return 0;
}
