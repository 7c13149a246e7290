// grpc.health.v1.Health for a grpc++ server, answered by libdubbo_health.
//
//   dh_registry *reg; dh_registry_new(&reg);
//   DubboHealthService health(reg);                 // keeps its own registry handle
//   builder.RegisterCallbackGenericService(&health);  // next to the host's own services
//
// The generic service receives every method no registered service handles: it answers
// /grpc.health.v1.Health/{Check,Watch,List} through dh_handle_check, dh_watch_from_request
// and dh_handle_list, and UNIMPLEMENTED for anything else.
#pragma once

#include <grpcpp/generic/async_generic_service.h>

#include "dubbo_health.h"

class DubboHealthService final : public grpc::CallbackGenericService {
 public:
  explicit DubboHealthService(const dh_registry* registry);
  ~DubboHealthService() override;
  DubboHealthService(const DubboHealthService&) = delete;
  DubboHealthService& operator=(const DubboHealthService&) = delete;

  grpc::ServerGenericBidiReactor* CreateReactor(grpc::GenericCallbackServerContext* ctx) override;

 private:
  dh_registry* registry_;
};
