// roi_align forward on CPU: a planar kernel for few ROIs and a channel-blocked kernel (vector
// FMAs over a cache line of channels, L2-resident tile per block) for everything else.
#include <ATen/Parallel.h>
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <memory>

#include "common/cpu_isa.h"
#include "common/stream_store.h"
#include "common/vec.h"
#include "roi_align/roi_align_cpu.h"

namespace ovvision {
namespace {

// Sum of the bin's taps at one channel of an (H, W) plane with the given pixel stride.
template <typename S, typename T>
inline T bin_scalar(
    const S* img, int64_t width, int64_t pixel_stride, const RoiTaps<T>& taps, int64_t ph,
    int64_t pw) {
  const AxisTaps<T>& rows = taps.rows;
  const AxisTaps<T>& cols = taps.cols;
  T acc = 0;
  for (int64_t iy = rows.begin[ph]; iy < rows.begin[ph + 1]; ++iy) {
    const S* row = img + rows.index[iy] * width * pixel_stride;
    T r = 0;
    for (int64_t ix = cols.begin[pw]; ix < cols.begin[pw + 1]; ++ix) {
      r += cols.weight[ix] * static_cast<T>(row[cols.index[ix] * pixel_stride]);
    }
    acc += rows.weight[iy] * r;
  }
  return acc;
}

template <typename V, int NV, typename T>
OVV_ALWAYS_INLINE void axpy(V* acc, T w, const T* p) {
  constexpr int L = sizeof(V) / sizeof(T);
  for (int j = 0; j < NV; ++j) {
    acc[j] += w * vload<V>(p + j * L);
  }
}

// bins[(ph * PW + pw) * B + j] for one ROI from a (H, W, B) tile. Four accumulator sets (two
// rows x two columns of taps) keep four independent FMA chains in flight.
template <typename T, int VB>
OVV_ALWAYS_INLINE void forward_roi(const T* img, const RoiTaps<T>& taps, int64_t width, T* bins) {
  using V = Vec<T, VB>;
  constexpr int64_t B = kChannelBlock<T>;
  constexpr int L = VB / sizeof(T);
  constexpr int NV = B / L;
  const AxisTaps<T>& rows = taps.rows;
  const AxisTaps<T>& cols = taps.cols;
  const int64_t pooled_h = static_cast<int64_t>(rows.begin.size()) - 1;
  const int64_t pooled_w = static_cast<int64_t>(cols.begin.size()) - 1;
  const int64_t row_stride = width * B;
  for (int64_t ph = 0; ph < pooled_h; ++ph) {
    const int64_t r_end = rows.begin[ph + 1];
    for (int64_t pw = 0; pw < pooled_w; ++pw) {
      const int64_t c_begin = cols.begin[pw];
      const int64_t c_end = cols.begin[pw + 1];
      V acc[4][NV];
      for (int a = 0; a < 4; ++a) {
        for (int j = 0; j < NV; ++j) {
          acc[a][j] = V{};
        }
      }
      int64_t iy = rows.begin[ph];
      for (; iy + 1 < r_end; iy += 2) {
        const T* r0 = img + rows.index[iy] * row_stride;
        const T* r1 = img + rows.index[iy + 1] * row_stride;
        const T wy0 = rows.weight[iy];
        const T wy1 = rows.weight[iy + 1];
        int64_t ix = c_begin;
        for (; ix + 1 < c_end; ix += 2) {
          const int64_t o0 = cols.index[ix] * B;
          const int64_t o1 = cols.index[ix + 1] * B;
          axpy<V, NV>(acc[0], wy0 * cols.weight[ix], r0 + o0);
          axpy<V, NV>(acc[1], wy0 * cols.weight[ix + 1], r0 + o1);
          axpy<V, NV>(acc[2], wy1 * cols.weight[ix], r1 + o0);
          axpy<V, NV>(acc[3], wy1 * cols.weight[ix + 1], r1 + o1);
        }
        if (ix < c_end) {
          const int64_t o0 = cols.index[ix] * B;
          axpy<V, NV>(acc[0], wy0 * cols.weight[ix], r0 + o0);
          axpy<V, NV>(acc[2], wy1 * cols.weight[ix], r1 + o0);
        }
      }
      if (iy < r_end) {
        const T* r0 = img + rows.index[iy] * row_stride;
        const T wy0 = rows.weight[iy];
        int64_t ix = c_begin;
        for (; ix + 1 < c_end; ix += 2) {
          axpy<V, NV>(acc[0], wy0 * cols.weight[ix], r0 + cols.index[ix] * B);
          axpy<V, NV>(acc[1], wy0 * cols.weight[ix + 1], r0 + cols.index[ix + 1] * B);
        }
        if (ix < c_end) {
          axpy<V, NV>(acc[0], wy0 * cols.weight[ix], r0 + cols.index[ix] * B);
        }
      }
      T* out = bins + (ph * pooled_w + pw) * B;
      for (int j = 0; j < NV; ++j) {
        vstore(out + j * L, (acc[0][j] + acc[1][j]) + (acc[2][j] + acc[3][j]));
      }
    }
  }
}

template <typename T>
using ForwardRoiFn = void (*)(const T*, const RoiTaps<T>&, int64_t, T*);

#if OVV_X86_MULTIVERSION
template <typename T>
OVV_TARGET_AVX512 void forward_roi_avx512(const T* i, const RoiTaps<T>& t, int64_t w, T* b) {
  forward_roi<T, 64>(i, t, w, b);
}

template <typename T>
OVV_TARGET_AVX2 void forward_roi_avx2(const T* i, const RoiTaps<T>& t, int64_t w, T* b) {
  forward_roi<T, 32>(i, t, w, b);
}
#endif

template <typename T>
void forward_roi_base(const T* i, const RoiTaps<T>& t, int64_t w, T* b) {
  forward_roi<T, 16>(i, t, w, b);
}

template <typename T>
ForwardRoiFn<T> select_forward_roi() {
#if OVV_X86_MULTIVERSION
  switch (cpu_isa()) {
    case CpuIsa::kAvx512:
      return forward_roi_avx512<T>;
    case CpuIsa::kAvx2:
      return forward_roi_avx2<T>;
    default:
      break;
  }
#endif
  return forward_roi_base<T>;
}

// tile (N, H, W, B) <- channels [c0, c0 + cb) of the input, zero beyond cb.
template <typename S, typename T>
void fill_tile(
    const RoiAlignForwardArgs<S>& a, const RoiAlignShape& s, int64_t c0, int64_t cb, T* tile,
    TransposeFn<T> transpose) {
  constexpr int64_t B = kChannelBlock<T>;
  const int64_t C = s.channels;
  const int64_t hw = s.height * s.width;
  if (a.input_channels_last) {
    for (int64_t p = 0; p < s.batch * hw; ++p) {
      const S* src = a.input + p * C + c0;
      __builtin_prefetch(src + 64 * C, 0, 2);
      for (int64_t j = 0; j < cb; ++j) {
        tile[p * B + j] = static_cast<T>(src[j]);
      }
    }
  } else {
    for (int64_t n = 0; n < s.batch; ++n) {
      const S* src = a.input + (n * C + c0) * hw;
      transpose_rect(src, hw, cb, hw, tile + n * hw * B, B, transpose);
    }
  }
  for (int64_t p = 0; cb < B && p < s.batch * hw; ++p) {
    std::fill(tile + p * B + cb, tile + (p + 1) * B, T(0));
  }
}

// Writes channels [c0, c0 + cb) of ROI k from bins (PH * PW, B). For NCHW the block's
// (cb, PH * PW) slab of the output is contiguous, so it is transposed in L1 and copied out.
template <typename S, typename T>
void write_bins(
    const T* bins, const RoiAlignForwardArgs<S>& a, const RoiAlignShape& s, int64_t k, int64_t c0,
    int64_t cb, TransposeFn<T> transpose, T* staging, bool stream) {
  constexpr int64_t B = kChannelBlock<T>;
  const int64_t nbins = s.pooled_h * s.pooled_w;
  if (a.output_channels_last) {
    for (int64_t b = 0; b < nbins; ++b) {
      copy_out(a.output + (k * nbins + b) * s.channels + c0, bins + b * B, cb, stream);
    }
    return;
  }
  transpose_rect(bins, B, nbins, cb, staging, nbins, transpose);
  copy_out(a.output + (k * s.channels + c0) * nbins, staging, cb * nbins, stream);
}

}  // namespace

template <typename S, typename T>
void roi_align_forward_planar(
    const RoiAlignForwardArgs<S>& a, const std::vector<RoiTaps<T>>& taps,
    const RoiAlignShape& s) {
  const int64_t C = s.channels;
  const int64_t nbins = s.pooled_h * s.pooled_w;
  const int64_t plane = s.height * s.width;
  const int64_t grain = grain_for(s.num_rois * C, roi_channel_work(s));
  at::parallel_for(0, s.num_rois * C, grain, [&](int64_t begin, int64_t end) {
    for (int64_t u = begin; u < end; ++u) {
      const RoiTaps<T>& t = taps[u / C];
      const S* img = a.input + (t.batch * C + u % C) * plane;
      S* out = a.output + u * nbins;
      for (int64_t ph = 0; ph < s.pooled_h; ++ph) {
        for (int64_t pw = 0; pw < s.pooled_w; ++pw) {
          out[ph * s.pooled_w + pw] = static_cast<S>(bin_scalar(img, s.width, 1, t, ph, pw));
        }
      }
    }
  });
}

template <typename S, typename T>
void roi_align_forward_blocked(
    const RoiAlignForwardArgs<S>& a, const std::vector<RoiTaps<T>>& taps,
    const RoiAlignShape& s) {
  constexpr int64_t B = kChannelBlock<T>;
  const int64_t blocks = (s.channels + B - 1) / B;
  // With fewer blocks than threads, a block's ROIs are split into chunks too.
  const int64_t chunks = std::clamp<int64_t>(
      (2 * at::get_num_threads() + blocks - 1) / blocks, 1, std::max<int64_t>(s.num_rois, 1));
  const int64_t tile_size = s.batch * s.height * s.width * B;
  const ForwardRoiFn<T> forward_roi_fn = select_forward_roi<T>();
  const TransposeFn<T> transpose = select_transpose<T>();
  const std::vector<int64_t> order = locality_order(taps);
  const bool stream = s.num_rois * s.channels * s.pooled_h * s.pooled_w * sizeof(S) >= kStreamBytes;
  const int64_t work = s.num_rois / chunks * B * roi_channel_work(s) + tile_size;
  at::parallel_for(0, blocks * chunks, grain_for(blocks * chunks, work), [&](int64_t begin, int64_t end) {
    const std::unique_ptr<T[]> tile(new T[tile_size]);
    const std::unique_ptr<T[]> bins(new T[s.pooled_h * s.pooled_w * B]);
    const std::unique_ptr<T[]> staging(new T[s.pooled_h * s.pooled_w * B]);
    int64_t filled = -1;
    for (int64_t task = begin; task < end; ++task) {
      const int64_t block = task / chunks;
      const int64_t chunk = task % chunks;
      const int64_t c0 = block * B;
      const int64_t cb = std::min(B, s.channels - c0);
      if (block != filled) {
        fill_tile(a, s, c0, cb, tile.get(), transpose);
        filled = block;
      }
      const int64_t k1 = s.num_rois * (chunk + 1) / chunks;
      for (int64_t i = s.num_rois * chunk / chunks; i < k1; ++i) {
        const int64_t k = order[i];
        const T* img = tile.get() + taps[k].batch * s.height * s.width * B;
        forward_roi_fn(img, taps[k], s.width, bins.get());
        write_bins(bins.get(), a, s, k, c0, cb, transpose, staging.get(), stream);
      }
    }
    stream_fence();
  });
}

#define OVV_INSTANTIATE_FORWARD(S, T)                                                   \
  template void roi_align_forward_planar<S, T>(                                         \
      const RoiAlignForwardArgs<S>&, const std::vector<RoiTaps<T>>&, const RoiAlignShape&); \
  template void roi_align_forward_blocked<S, T>(                                        \
      const RoiAlignForwardArgs<S>&, const std::vector<RoiTaps<T>>&, const RoiAlignShape&);

OVV_INSTANTIATE_FORWARD(float, float)
OVV_INSTANTIATE_FORWARD(double, double)
OVV_INSTANTIATE_FORWARD(c10::Half, float)
OVV_INSTANTIATE_FORWARD(c10::BFloat16, float)
#undef OVV_INSTANTIATE_FORWARD

}  // namespace ovvision
