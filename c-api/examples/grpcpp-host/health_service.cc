#include "health_service.h"

#include <mutex>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>

namespace {

std::string Flatten(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  std::string out;
  if (!buffer.Dump(&slices).ok()) return out;
  for (const auto& s : slices) out.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return out;
}

grpc::ByteBuffer ToBuffer(const uint8_t* data, size_t len) {
  grpc::Slice slice(data, len);
  return grpc::ByteBuffer(&slice, 1);
}

std::string LastError() {
  char buf[512];
  size_t len = 0;
  if (dh_last_error_message(buf, sizeof buf, &len) != DH_OK) return "internal error";
  return std::string(buf, len);
}

using Handler = dh_result (*)(const dh_registry*, const uint8_t*, size_t, uint8_t*, size_t, size_t*,
                              uint32_t*);

// Check and List: read one request, answer once.
class UnaryReactor final : public grpc::ServerGenericBidiReactor {
 public:
  UnaryReactor(const dh_registry* registry, Handler handler) : registry_(registry), handler_(handler) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
      return;
    }
    const std::string req = Flatten(request_);
    std::vector<uint8_t> out(DH_LIST_RESPONSE_MAX_LEN);
    size_t len = 0;
    uint32_t code = 0;
    dh_result rc = handler_(registry_, reinterpret_cast<const uint8_t*>(req.data()), req.size(), out.data(),
                            out.size(), &len, &code);
    if (rc == DH_BUFFER_TOO_SMALL) {  // names were added meanwhile: once more, with room
      out.resize(len);
      rc = handler_(registry_, reinterpret_cast<const uint8_t*>(req.data()), req.size(), out.data(), out.size(),
                    &len, &code);
    }
    if (rc != DH_OK) {
      Finish(grpc::Status(grpc::StatusCode::INTERNAL, LastError()));
    } else if (code != 0) {
      Finish(grpc::Status(static_cast<grpc::StatusCode>(code),
                          std::string(reinterpret_cast<const char*>(out.data()), len)));
    } else {
      response_ = ToBuffer(out.data(), len);
      StartWriteAndFinish(&response_, grpc::WriteOptions(), grpc::Status::OK);
    }
  }

  void OnDone() override { delete this; }

 private:
  const dh_registry* registry_;
  Handler handler_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

// Watch: a dh_watch whose callback pushes each new status as the next stream message.
// At most one write is in flight; a status that arrives meanwhile is taken when it ends
// (latest wins, as the core guarantees).
class WatchReactor final : public grpc::ServerGenericBidiReactor {
 public:
  explicit WatchReactor(const dh_registry* registry) : registry_(registry) { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    dh_watch* w = nullptr;
    {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      if (!ok) {  // cancelled before the request arrived, or no request at all
        FinishOnce(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no request message"));
        return;
      }
      if (finished_) return;  // cancelled meanwhile
      const std::string req = Flatten(request_);
      uint32_t code = 0;
      if (dh_watch_from_request(registry_, reinterpret_cast<const uint8_t*>(req.data()), req.size(), &w, &code) !=
          DH_OK) {
        FinishOnce(grpc::Status(static_cast<grpc::StatusCode>(code ? code : 13), LastError()));
        return;
      }
      watch_ = w;
    }
    // Runs OnWake once right away: the first status is ready at once. Not under mu_: the
    // callback may already be running on a dh_set thread, waiting for mu_.
    dh_watch_set_callback(w, &WatchReactor::OnWake, this);
  }

  void OnWriteDone(bool ok) override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    writing_ = false;
    if (!ok) {  // the client went away; OnCancel finishes
      return;
    }
    Pump();
  }

  void OnCancel() override {
    std::lock_guard<std::recursive_mutex> lock(mu_);
    FinishOnce(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    dh_watch* w;
    {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      w = watch_;
      watch_ = nullptr;
    }
    // After dh_watch_free returns the callback is not running and never runs again.
    dh_watch_free(w);
    delete this;
  }

 private:
  static void OnWake(void* self) {
    auto* r = static_cast<WatchReactor*>(self);
    std::lock_guard<std::recursive_mutex> lock(r->mu_);
    r->Pump();
  }

  // Called with mu_ held: start the next write if a status is ready and none is in flight.
  void Pump() {
    if (writing_ || finished_ || watch_ == nullptr) return;
    dh_status status;
    dh_result rc = dh_watch_try_next(watch_, &status);
    if (rc == DH_WOULD_BLOCK) return;
    if (rc == DH_CLOSED) {  // the registry ended its watches (the server is stopping)
      FinishOnce(grpc::Status::OK);
      return;
    }
    if (rc != DH_OK) {
      FinishOnce(grpc::Status(grpc::StatusCode::INTERNAL, LastError()));
      return;
    }
    uint8_t out[DH_CHECK_RESPONSE_MAX_LEN];
    size_t len = 0;
    if (dh_encode_check_response(status, out, sizeof out, &len) != DH_OK) {
      FinishOnce(grpc::Status(grpc::StatusCode::INTERNAL, LastError()));
      return;
    }
    response_ = ToBuffer(out, len);
    writing_ = true;
    StartWrite(&response_);
  }

  void FinishOnce(const grpc::Status& status) {
    if (finished_) return;
    finished_ = true;
    Finish(status);
  }

  const dh_registry* registry_;
  std::recursive_mutex mu_;
  dh_watch* watch_ = nullptr;
  bool writing_ = false;
  bool finished_ = false;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer response_;
};

class Unimplemented final : public grpc::ServerGenericBidiReactor {
 public:
  Unimplemented() { Finish(grpc::Status(grpc::StatusCode::UNIMPLEMENTED, "")); }
  void OnDone() override { delete this; }
};

}  // namespace

DubboHealthService::DubboHealthService(const dh_registry* registry) : registry_(nullptr) {
  dh_registry_clone(registry, &registry_);
}

DubboHealthService::~DubboHealthService() { dh_registry_free(registry_); }

grpc::ServerGenericBidiReactor* DubboHealthService::CreateReactor(grpc::GenericCallbackServerContext* ctx) {
  const std::string& method = ctx->method();
  if (method == "/grpc.health.v1.Health/Check") return new UnaryReactor(registry_, dh_handle_check);
  if (method == "/grpc.health.v1.Health/List") return new UnaryReactor(registry_, dh_handle_list);
  if (method == "/grpc.health.v1.Health/Watch") return new WatchReactor(registry_);
  return new Unimplemented();
}
