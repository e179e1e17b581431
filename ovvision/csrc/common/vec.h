// Fixed-width SIMD vectors through the GCC/Clang vector extension. A kernel written against
// Vec<T, VB> compiles to AVX-512 (VB = 64), AVX2 (32) or SSE2 (16) code depending on the
// `target` attribute of the function it is inlined into (see cpu_isa.h).
#pragma once

#include <cstring>

#include "common/cpu_isa.h"

#pragma GCC diagnostic ignored "-Wpsabi"

namespace ovvision {

template <typename T, int VB>
struct VecType {
  typedef T type __attribute__((vector_size(VB)));
};

template <typename T, int VB>
using Vec = typename VecType<T, VB>::type;

// Unaligned load / store of one vector.
template <typename V, typename T>
OVV_ALWAYS_INLINE V vload(const T* p) {
  V v;
  std::memcpy(&v, p, sizeof(V));
  return v;
}

template <typename V, typename T>
OVV_ALWAYS_INLINE void vstore(T* p, const V& v) {
  std::memcpy(p, &v, sizeof(V));
}

}  // namespace ovvision
