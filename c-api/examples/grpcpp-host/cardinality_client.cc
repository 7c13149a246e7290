// Calls a grpc.health.v1.Health method with any number of request messages, over
// grpc::GenericStub (a generic call is a stream, so zero or two messages can be sent):
// prints "messages M code C[ MESSAGE]": the response messages read, then the final gRPC
// status code and message.
//
//   cardinality-client ADDR METHOD COUNT HEX_PAYLOAD MAX_READS
//
// METHOD is Check, Watch or List; COUNT copies of the payload (hex, "" for an empty
// message) are sent before the half-close; after MAX_READS responses the call is
// cancelled (a Watch never ends by itself).
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

namespace {

void* Tag(long n) { return reinterpret_cast<void*>(n); }

std::string Unhex(const std::string& hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) out.push_back(static_cast<char>(std::stoi(hex.substr(i, 2), nullptr, 16)));
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 6) {
    std::fprintf(stderr, "usage: %s ADDR METHOD COUNT HEX_PAYLOAD MAX_READS\n", argv[0]);
    return 1;
  }
  const std::string method = std::string("/grpc.health.v1.Health/") + argv[2];
  const int count = std::atoi(argv[3]);
  const std::string payload = Unhex(argv[4]);
  const int max_reads = std::atoi(argv[5]);
  auto channel = grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, method, &cq);

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
  for (int i = 0; i < count; i++) {
    grpc::Slice slice(payload.data(), payload.size());
    grpc::ByteBuffer request(&slice, 1);
    call->Write(request, Tag(2));
    if (!wait(2)) break;  // the server has already ended the call
  }
  call->WritesDone(Tag(3));
  wait(3);

  int reads = 0;
  while (reads < max_reads) {
    grpc::ByteBuffer response;
    call->Read(&response, Tag(4));
    if (!wait(4)) break;
    reads++;
  }
  if (reads >= max_reads) ctx.TryCancel();
  grpc::Status status;
  call->Finish(&status, Tag(5));
  wait(5);
  std::printf("messages %d code %d%s%s\n", reads, static_cast<int>(status.error_code()),
              status.error_message().empty() ? "" : " ", status.error_message().c_str());
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  return 0;
}
