// Transposes of one square block of a cache line per row (16 x 16 floats, 8 x 8 doubles), the
// unit in which the channel-blocked kernels move data between NCHW planes and their tiles.
#pragma once

#include <cstdint>
#include <type_traits>

namespace ovvision {

template <typename T>
constexpr int64_t kLineElems = 64 / sizeof(T);

// dst[j * dst_stride + i] = src[i * src_stride + j] for 0 <= i, j < kLineElems<T>.
template <typename T>
using TransposeFn = void (*)(const T* src, int64_t src_stride, T* dst, int64_t dst_stride);

// The fastest transpose the CPU supports (AVX-512 shuffles or a scalar loop).
template <typename T>
TransposeFn<T> select_transpose();

// dst[j * dst_stride + i] = D(src[i * src_stride + j]) for i < rows, j < cols. Whole blocks go
// through `block` (a TransposeFn<D>) when no conversion is needed; the ragged edges and
// conversions are scalar.
template <typename S, typename D, typename Block>
void transpose_rect(
    const S* src, int64_t src_stride, int64_t rows, int64_t cols, D* dst, int64_t dst_stride,
    Block block) {
  const auto scalar = [&](int64_t i_begin, int64_t i_end, int64_t j_begin, int64_t j_end) {
    for (int64_t i = i_begin; i < i_end; ++i) {
      for (int64_t j = j_begin; j < j_end; ++j) {
        dst[j * dst_stride + i] = static_cast<D>(src[i * src_stride + j]);
      }
    }
  };
  int64_t rows_done = 0;
  if constexpr (std::is_same_v<S, D>) {
    constexpr int64_t n = kLineElems<D>;
    const int64_t full_rows = rows / n * n;
    const int64_t full_cols = cols / n * n;
    for (int64_t i0 = 0; i0 < full_rows; i0 += n) {
      for (int64_t j0 = 0; j0 < full_cols; j0 += n) {
        block(src + i0 * src_stride + j0, src_stride, dst + j0 * dst_stride + i0, dst_stride);
      }
    }
    scalar(0, full_rows, full_cols, cols);
    rows_done = full_rows;
  }
  scalar(rows_done, rows, 0, cols);
}

}  // namespace ovvision
