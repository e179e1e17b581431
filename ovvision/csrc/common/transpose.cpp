#include "common/transpose.h"

#include "common/cpu_isa.h"

#if OVV_X86_MULTIVERSION
#include <immintrin.h>
#endif

namespace ovvision {
namespace {

template <typename T>
void transpose_scalar(const T* src, int64_t src_stride, T* dst, int64_t dst_stride) {
  constexpr int64_t n = kLineElems<T>;
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      dst[j * dst_stride + i] = src[i * src_stride + j];
    }
  }
}

#if OVV_X86_MULTIVERSION
// Four shuffle stages: 32-bit pairs, 64-bit pairs, then 128-bit lanes twice.
OVV_TARGET_AVX512 void transpose_avx512_f32(
    const float* src, int64_t src_stride, float* dst, int64_t dst_stride) {
  __m512 r[16];
  __m512 t[16];
  for (int i = 0; i < 16; ++i) {
    r[i] = _mm512_loadu_ps(src + i * src_stride);
  }
  for (int i = 0; i < 16; i += 2) {
    t[i] = _mm512_unpacklo_ps(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_ps(r[i], r[i + 1]);
  }
  for (int i = 0; i < 16; i += 4) {
    const __m512d a = _mm512_castps_pd(t[i]);
    const __m512d b = _mm512_castps_pd(t[i + 1]);
    const __m512d c = _mm512_castps_pd(t[i + 2]);
    const __m512d d = _mm512_castps_pd(t[i + 3]);
    r[i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
    r[i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
    r[i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
    r[i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
  }
  for (int h = 0; h < 16; h += 8) {
    for (int i = 0; i < 4; ++i) {
      t[h + i] = _mm512_shuffle_f32x4(r[h + i], r[h + 4 + i], 0x88);
      t[h + 4 + i] = _mm512_shuffle_f32x4(r[h + i], r[h + 4 + i], 0xdd);
    }
  }
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0x88);
    r[8 + i] = _mm512_shuffle_f32x4(t[i], t[8 + i], 0xdd);
  }
  for (int i = 0; i < 16; ++i) {
    _mm512_storeu_ps(dst + i * dst_stride, r[i]);
  }
}

OVV_TARGET_AVX512 void transpose_avx512_f64(
    const double* src, int64_t src_stride, double* dst, int64_t dst_stride) {
  __m512d r[8];
  __m512d t[8];
  for (int i = 0; i < 8; ++i) {
    r[i] = _mm512_loadu_pd(src + i * src_stride);
  }
  for (int i = 0; i < 8; i += 2) {
    t[i] = _mm512_unpacklo_pd(r[i], r[i + 1]);
    t[i + 1] = _mm512_unpackhi_pd(r[i], r[i + 1]);
  }
  for (int h = 0; h < 8; h += 4) {
    r[h] = _mm512_shuffle_f64x2(t[h], t[h + 2], 0x88);
    r[h + 1] = _mm512_shuffle_f64x2(t[h + 1], t[h + 3], 0x88);
    r[h + 2] = _mm512_shuffle_f64x2(t[h], t[h + 2], 0xdd);
    r[h + 3] = _mm512_shuffle_f64x2(t[h + 1], t[h + 3], 0xdd);
  }
  for (int i = 0; i < 4; ++i) {
    t[i] = _mm512_shuffle_f64x2(r[i], r[4 + i], 0x88);
    t[4 + i] = _mm512_shuffle_f64x2(r[i], r[4 + i], 0xdd);
  }
  for (int i = 0; i < 8; ++i) {
    _mm512_storeu_pd(dst + i * dst_stride, t[i]);
  }
}
#endif

}  // namespace

template <>
TransposeFn<float> select_transpose<float>() {
#if OVV_X86_MULTIVERSION
  if (cpu_isa() == CpuIsa::kAvx512) {
    return transpose_avx512_f32;
  }
#endif
  return transpose_scalar<float>;
}

template <>
TransposeFn<double> select_transpose<double>() {
#if OVV_X86_MULTIVERSION
  if (cpu_isa() == CpuIsa::kAvx512) {
    return transpose_avx512_f64;
  }
#endif
  return transpose_scalar<double>;
}

}  // namespace ovvision
