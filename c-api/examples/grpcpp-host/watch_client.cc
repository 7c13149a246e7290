// A minimal grpc.health.v1.Health/Watch client built on grpc::GenericStub (no generated
// code): prints one line per message, "SERVING" etc., then "end OK" or "end <CODE>".
//
//   health-watch-client ADDR SERVICE MAX_MESSAGES TIMEOUT_SECONDS
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

namespace {

const char* StatusName(const std::string& msg) {
  // HealthCheckResponse { status = 1 (varint) }: empty for UNKNOWN, else 0x08 <n>.
  int n = msg.size() >= 2 && static_cast<unsigned char>(msg[0]) == 0x08 ? msg[1] : 0;
  switch (n) {
    case 0: return "UNKNOWN";
    case 1: return "SERVING";
    case 2: return "NOT_SERVING";
    case 3: return "SERVICE_UNKNOWN";
    default: return "INVALID";
  }
}

void* Tag(long n) { return reinterpret_cast<void*>(n); }

}  // namespace

int main(int argc, char** argv) {
  if (argc != 5) {
    std::fprintf(stderr, "usage: %s ADDR SERVICE MAX_MESSAGES TIMEOUT_SECONDS\n", argv[0]);
    return 1;
  }
  const std::string service = argv[2];
  const int max_messages = std::atoi(argv[3]);
  auto channel = grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(std::atoi(argv[4])));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, "/grpc.health.v1.Health/Watch", &cq);

  std::string req;
  req.push_back(0x0a);
  req.push_back(static_cast<char>(service.size()));
  req += service;
  grpc::Slice slice(req.data(), req.size());
  grpc::ByteBuffer request(&slice, 1);

  void* tag;
  bool ok;
  auto wait = [&](long want) {
    if (!cq.Next(&tag, &ok) || tag != Tag(want)) {
      std::fprintf(stderr, "completion queue out of order\n");
      std::exit(2);
    }
    return ok;
  };
  call->StartCall(Tag(1));
  if (!wait(1)) return 2;
  call->Write(request, Tag(2));
  if (!wait(2)) return 2;
  call->WritesDone(Tag(3));
  wait(3);

  int seen = 0;
  while (seen < max_messages) {
    grpc::ByteBuffer response;
    call->Read(&response, Tag(4));
    if (!wait(4)) break;
    std::vector<grpc::Slice> slices;
    std::string msg;
    (void)response.Dump(&slices);
    for (const auto& s : slices) msg.append(reinterpret_cast<const char*>(s.begin()), s.size());
    std::printf("%s\n", StatusName(msg));
    std::fflush(stdout);
    seen++;
  }
  if (seen >= max_messages) ctx.TryCancel();
  grpc::Status status;
  call->Finish(&status, Tag(5));
  wait(5);
  std::printf("end %s\n", status.ok() ? "OK" : std::to_string(status.error_code()).c_str());
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return seen >= max_messages || status.ok() ? 0 : 3;
}
