// Links DubboHealth::dubbo_health_static (the CMake package's static target) and checks the
// library answers: built and run by `make test-c-grpcpp`.
#include <cstdio>
#include <cstring>

#include "dubbo_health.h"

int main() {
  dh_registry* reg = nullptr;
  dh_status status = -1;
  if (dh_registry_new(&reg) != DH_OK) return 1;
  const bool ok = dh_get(reg, nullptr, 0, &status) == DH_OK && status == DH_STATUS_SERVING &&
                  std::strcmp(dh_version(), DH_VERSION) == 0;
  dh_registry_free(reg);
  std::printf("static library %s: %s\n", dh_version(), ok ? "ok" : "FAILED");
  return ok ? 0 : 1;
}
