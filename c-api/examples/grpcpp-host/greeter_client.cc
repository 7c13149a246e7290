// Calls the host's own Greeter service: proves it is served beside the health service.
//   greeter-client ADDR NAME     prints the reply message
#include <chrono>
#include <cstdio>

#include <grpcpp/grpcpp.h>

#include "greeter.grpc.pb.h"

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: %s ADDR NAME\n", argv[0]);
    return 1;
  }
  auto stub = dubbo::example::Greeter::NewStub(grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  dubbo::example::HelloRequest req;
  req.set_name(argv[2]);
  dubbo::example::HelloReply reply;
  grpc::Status status = stub->SayHello(&ctx, req, &reply);
  if (!status.ok()) {
    std::fprintf(stderr, "SayHello failed: %d %s\n", status.error_code(), status.error_message().c_str());
    return 3;
  }
  std::printf("%s\n", reply.message().c_str());
  return 0;
}
