#include "common/cpu_isa.h"

#include <cstdlib>
#include <string>

namespace ovvision {
namespace {

CpuIsa supported_isa() {
#if OVV_X86_MULTIVERSION
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq") &&
      __builtin_cpu_supports("fma")) {
    return CpuIsa::kAvx512;
  }
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) {
    return CpuIsa::kAvx2;
  }
#endif
  return CpuIsa::kBase;
}

CpuIsa requested_isa() {
  const char* env = std::getenv("OVVISION_CPU_ISA");
  if (env == nullptr) {
    return CpuIsa::kAvx512;
  }
  const std::string name(env);
  if (name == "base") {
    return CpuIsa::kBase;
  }
  if (name == "avx2") {
    return CpuIsa::kAvx2;
  }
  return CpuIsa::kAvx512;
}

}  // namespace

CpuIsa cpu_isa() {
  static const CpuIsa isa = [] {
    const CpuIsa have = supported_isa();
    const CpuIsa want = requested_isa();
    return static_cast<int>(want) < static_cast<int>(have) ? want : have;
  }();
  return isa;
}

const char* cpu_isa_name(CpuIsa isa) {
  switch (isa) {
    case CpuIsa::kAvx512:
      return "avx512";
    case CpuIsa::kAvx2:
      return "avx2";
    default:
      return "base";
  }
}

}  // namespace ovvision
