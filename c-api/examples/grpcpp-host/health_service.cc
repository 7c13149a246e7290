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

// Check, Watch and List take exactly one request message. A generic service sees the
// call as a stream, so it reads until the client half-closes: no message, or a second
// one, is a cardinality violation, UNIMPLEMENTED by gRPC's status-code guide (what
// grpc++'s own unary handlers answer too). A frame of length 0 is one message: the name "".
const char kNoRequest[] = "expected exactly one request message, got none";
const char kTooManyRequests[] = "expected exactly one request message, got more";

// Counts request messages: Next(ok) returns true while the caller must read once more.
class OneRequest {
 public:
  // The status to end the call with, once a read came back; OK when exactly one arrived
  // and the client half-closed.
  bool Next(bool ok, grpc::Status* verdict) {
    if (reads_++ == 0) {
      if (!ok) {
        *verdict = grpc::Status(grpc::StatusCode::UNIMPLEMENTED, kNoRequest);
        return false;
      }
      return true;  // one message; now wait for the half-close
    }
    *verdict = ok ? grpc::Status(grpc::StatusCode::UNIMPLEMENTED, kTooManyRequests) : grpc::Status::OK;
    return false;
  }

 private:
  int reads_ = 0;
};

// Check and List: read one request, answer once.
class UnaryReactor final : public grpc::ServerGenericBidiReactor {
 public:
  UnaryReactor(const dh_registry* registry, Handler handler) : registry_(registry), handler_(handler) {
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    grpc::Status verdict;
    if (count_.Next(ok, &verdict)) {
      StartRead(&extra_);
      return;
    }
    if (!verdict.ok()) {
      Finish(verdict);
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
  OneRequest count_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer extra_;
  grpc::ByteBuffer response_;
};

// Watch: a dh_watch whose callback pushes each new status as the next stream message.
// At most one write is in flight; a status that arrives meanwhile is taken when it ends
// (latest wins, as the core guarantees). The callback runs on libdubbo_health's callback
// thread, never inside a dh_set: taking mu_ there cannot deadlock with a host thread that
// holds mu_ and changes a status.
class WatchReactor final : public grpc::ServerGenericBidiReactor {
 public:
  explicit WatchReactor(const dh_registry* registry) : registry_(registry) { StartRead(&request_); }

  void OnReadDone(bool ok) override {
    dh_watch* w = nullptr;
    {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      if (finished_) return;  // cancelled meanwhile
      grpc::Status verdict;
      if (count_.Next(ok, &verdict)) {
        StartRead(&extra_);
        return;
      }
      if (!verdict.ok()) {  // no request, or more than one (a cancel also ends here)
        FinishOnce(verdict);
        return;
      }
      const std::string req = Flatten(request_);
      uint32_t code = 0;
      if (dh_watch_from_request(registry_, reinterpret_cast<const uint8_t*>(req.data()), req.size(), &w, &code) !=
          DH_OK) {
        FinishOnce(grpc::Status(static_cast<grpc::StatusCode>(code ? code : 13), LastError()));
        return;
      }
      watch_ = w;
    }
    // OnWake runs soon on the callback thread: the first status is ready at once. Not
    // under mu_: installing may wait for a running callback, which may be waiting for mu_.
    if (dh_watch_set_callback(w, &WatchReactor::OnWake, this) != DH_OK) {
      std::lock_guard<std::recursive_mutex> lock(mu_);
      FinishOnce(grpc::Status(grpc::StatusCode::INTERNAL, LastError()));
    }
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
  OneRequest count_;
  grpc::ByteBuffer request_;
  grpc::ByteBuffer extra_;
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
