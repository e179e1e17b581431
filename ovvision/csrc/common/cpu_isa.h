// Runtime choice of the widest x86 vector ISA for the hot CPU loops.
//
// The extension is compiled for baseline x86-64, so the hot loops are compiled once more per
// ISA with GCC/Clang `target` attributes (see OVV_TARGET_*) and one of the copies is chosen at
// run time. OVVISION_CPU_ISA=base|avx2|avx512 caps the choice (used by the tests to run every
// copy); an ISA the CPU lacks is never chosen.
#pragma once

#include <cstring>

namespace ovvision {

enum class CpuIsa { kBase = 0, kAvx2 = 1, kAvx512 = 2 };

// The ISA the kernels run with; detected once per process.
CpuIsa cpu_isa();

// Name of an ISA as accepted by OVVISION_CPU_ISA.
const char* cpu_isa_name(CpuIsa isa);

}  // namespace ovvision

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define OVV_X86_MULTIVERSION 1
#define OVV_TARGET_AVX512 \
  __attribute__((target("avx512f,avx512vl,avx512bw,avx512dq,avx2,fma,bmi,bmi2,f16c")))
#define OVV_TARGET_AVX2 __attribute__((target("avx2,fma,bmi,bmi2,f16c")))
#else
#define OVV_X86_MULTIVERSION 0
#endif

#define OVV_ALWAYS_INLINE inline __attribute__((always_inline))
