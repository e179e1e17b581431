// Writing large outputs with non-temporal stores: a line written once and not read again soon
// skips the read-for-ownership a normal store pays, which is most of the cost of filling a
// fresh multi-megabyte output.
#pragma once

#include <cstdint>
#include <type_traits>

#if defined(__SSE2__)
#include <immintrin.h>
#endif

namespace ovvision {

// Outputs at least this large are streamed; smaller ones are better left in cache.
constexpr int64_t kStreamBytes = int64_t(4) << 20;

// dst[i] = D(src[i]) for i < n; streaming stores when `stream` and the types allow it.
template <typename D, typename S>
inline void copy_out(D* dst, const S* src, int64_t n, bool stream) {
#if defined(__SSE2__)
  if constexpr (std::is_same_v<D, S> && (std::is_same_v<D, float> || std::is_same_v<D, double>)) {
    constexpr int64_t lane = 16 / sizeof(D);
    if (stream && reinterpret_cast<uintptr_t>(dst) % 16 == 0) {
      int64_t i = 0;
      for (; i + lane <= n; i += lane) {
        if constexpr (std::is_same_v<D, float>) {
          _mm_stream_ps(dst + i, _mm_loadu_ps(src + i));
        } else {
          _mm_stream_pd(dst + i, _mm_loadu_pd(src + i));
        }
      }
      for (; i < n; ++i) {
        dst[i] = src[i];
      }
      return;
    }
  }
#endif
  for (int64_t i = 0; i < n; ++i) {
    dst[i] = static_cast<D>(src[i]);
  }
}

// Orders this thread's streaming stores before later stores (call before a parallel task ends).
inline void stream_fence() {
#if defined(__SSE2__)
  _mm_sfence();
#endif
}

}  // namespace ovvision
