// roi_align backward on CPU without atomics: each worker takes whole channels (or channel
// blocks) and walks all ROIs scattering into those channels only.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "common/cpu_isa.h"
#include "common/parallel.h"
#include "common/stream_store.h"
#include "common/vec.h"
#include "roi_align/roi_align_cpu.h"

namespace ovvision {
namespace {

// Pixels per transposed span when draining a tile into NCHW planes.
constexpr int64_t kDrainSpan = 256;

// pixel += w * grad of the bin, for every tap of every bin of one ROI, on a (H, W, B) tile.
template <typename T, int VB>
OVV_ALWAYS_INLINE void scatter_roi(
    const T* grad_bins, const RoiTaps<T>& taps, int64_t width, T* img) {
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
    for (int64_t pw = 0; pw < pooled_w; ++pw) {
      V g[NV];
      for (int j = 0; j < NV; ++j) {
        g[j] = vload<V>(grad_bins + (ph * pooled_w + pw) * B + j * L);
      }
      for (int64_t iy = rows.begin[ph]; iy < rows.begin[ph + 1]; ++iy) {
        T* row = img + rows.index[iy] * row_stride;
        const T wy = rows.weight[iy];
        for (int64_t ix = cols.begin[pw]; ix < cols.begin[pw + 1]; ++ix) {
          T* p = row + cols.index[ix] * B;
          const T w = wy * cols.weight[ix];
          for (int j = 0; j < NV; ++j) {
            vstore(p + j * L, vload<V>(p + j * L) + w * g[j]);
          }
        }
      }
    }
  }
}

template <typename T>
using ScatterRoiFn = void (*)(const T*, const RoiTaps<T>&, int64_t, T*);

#if OVV_X86_MULTIVERSION
template <typename T>
OVV_TARGET_AVX512 void scatter_roi_avx512(const T* g, const RoiTaps<T>& t, int64_t w, T* i) {
  scatter_roi<T, 64>(g, t, w, i);
}

template <typename T>
OVV_TARGET_AVX2 void scatter_roi_avx2(const T* g, const RoiTaps<T>& t, int64_t w, T* i) {
  scatter_roi<T, 32>(g, t, w, i);
}
#endif

template <typename T>
void scatter_roi_base(const T* g, const RoiTaps<T>& t, int64_t w, T* i) {
  scatter_roi<T, 16>(g, t, w, i);
}

template <typename T>
ScatterRoiFn<T> select_scatter_roi() {
#if OVV_X86_MULTIVERSION
  switch (cpu_isa()) {
    case CpuIsa::kAvx512:
      return scatter_roi_avx512<T>;
    case CpuIsa::kAvx2:
      return scatter_roi_avx2<T>;
    default:
      break;
  }
#endif
  return scatter_roi_base<T>;
}

// grad_bins (PH * PW, B) <- channels [c0, c0 + cb) of grad[k], zero beyond cb.
template <typename S, typename T>
void gather_grad(
    const RoiAlignBackwardArgs<S>& a, const RoiAlignShape& s, int64_t k, int64_t c0, int64_t cb,
    T* grad_bins, TransposeFn<T> transpose) {
  constexpr int64_t B = kChannelBlock<T>;
  const int64_t* st = a.grad_strides;
  const int64_t nbins = s.pooled_h * s.pooled_w;
  const S* grad = a.grad + k * st[0] + c0 * st[1];
  if (st[3] == 1 && st[2] == s.pooled_w) {  // the bins of a channel are contiguous
    transpose_rect(grad, st[1], cb, nbins, grad_bins, B, transpose);
  } else {
    for (int64_t ph = 0; ph < s.pooled_h; ++ph) {
      for (int64_t pw = 0; pw < s.pooled_w; ++pw) {
        const S* src = grad + ph * st[2] + pw * st[3];
        T* dst = grad_bins + (ph * s.pooled_w + pw) * B;
        for (int64_t j = 0; j < cb; ++j) {
          dst[j] = static_cast<T>(src[j * st[1]]);
        }
      }
    }
  }
  for (int64_t b = 0; cb < B && b < nbins; ++b) {
    std::fill(grad_bins + b * B + cb, grad_bins + (b + 1) * B, T(0));
  }
}

// Channels [c0, c0 + cb) of image n of grad_input <- tile (H, W, B). For NCHW, spans of
// pixels are transposed in L1 and copied out plane by plane.
template <typename S, typename T>
void drain_tile(
    const T* tile, const RoiAlignBackwardArgs<S>& a, const RoiAlignShape& s, int64_t n,
    int64_t c0, int64_t cb, TransposeFn<T> transpose, T* staging, bool stream) {
  constexpr int64_t B = kChannelBlock<T>;
  const int64_t C = s.channels;
  const int64_t hw = s.height * s.width;
  if (a.channels_last) {
    for (int64_t p = 0; p < hw; ++p) {
      copy_out(a.grad_input + (n * hw + p) * C + c0, tile + p * B, cb, stream);
    }
    return;
  }
  for (int64_t p0 = 0; p0 < hw; p0 += kDrainSpan) {
    const int64_t span = std::min(kDrainSpan, hw - p0);
    transpose_rect(tile + p0 * B, B, span, cb, staging, span, transpose);
    for (int64_t j = 0; j < cb; ++j) {
      copy_out(a.grad_input + (n * C + c0 + j) * hw + p0, staging + j * span, span, stream);
    }
  }
}

}  // namespace

template <typename T>
void roi_align_backward_planar(
    const RoiAlignBackwardArgs<T>& a, const std::vector<RoiTaps<T>>& taps,
    const RoiAlignShape& s) {
  const int64_t C = s.channels;
  const int64_t plane = s.height * s.width;
  const int64_t* st = a.grad_strides;
  parallel_workers(C, 1, C * s.num_rois * roi_channel_work(s), [&](ChunkQueue& queue) {
    for (int64_t c_begin, c_end; queue.pop(c_begin, c_end);) {
      for (int64_t k = 0; k < s.num_rois; ++k) {
        const RoiTaps<T>& t = taps[k];
        for (int64_t c = c_begin; c < c_end; ++c) {
          T* img = a.grad_input + (t.batch * C + c) * plane;
          const T* grad = a.grad + k * st[0] + c * st[1];
          for (int64_t ph = 0; ph < s.pooled_h; ++ph) {
            for (int64_t pw = 0; pw < s.pooled_w; ++pw) {
              const T g = grad[ph * st[2] + pw * st[3]];
              for (int64_t iy = t.rows.begin[ph]; iy < t.rows.begin[ph + 1]; ++iy) {
                T* row = img + t.rows.index[iy] * s.width;
                const T wg = t.rows.weight[iy] * g;
                for (int64_t ix = t.cols.begin[pw]; ix < t.cols.begin[pw + 1]; ++ix) {
                  row[t.cols.index[ix]] += wg * t.cols.weight[ix];
                }
              }
            }
          }
        }
      }
    }
  });
}

template <typename S, typename T>
void roi_align_backward_blocked(
    const RoiAlignBackwardArgs<S>& a, const std::vector<RoiTaps<T>>& taps,
    const RoiAlignShape& s) {
  constexpr int64_t B = kChannelBlock<T>;
  const int64_t blocks = (s.channels + B - 1) / B;
  const int64_t hw = s.height * s.width;
  const int64_t tile_size = hw * B;
  const ScatterRoiFn<T> scatter_roi_fn = select_scatter_roi<T>();
  const TransposeFn<T> transpose = select_transpose<T>();
  const RoiSchedule schedule = schedule_rois(taps, s.batch);
  const bool stream = s.batch * s.channels * hw * sizeof(S) >= kStreamBytes;
  const int64_t work = blocks * (s.num_rois * B * roi_channel_work(s) + s.batch * tile_size);
  // Tasks are (block, image): each owns its part of grad_input.
  parallel_workers(blocks * s.batch, 1, work, [&](ChunkQueue& queue) {
    const std::unique_ptr<T[]> tile(new T[tile_size]);
    const std::unique_ptr<T[]> grad_bins(new T[s.pooled_h * s.pooled_w * B]);
    const std::unique_ptr<T[]> staging(new T[kDrainSpan * B]);
    for (int64_t pair, pair_end; queue.pop(pair, pair_end);) {
      const int64_t block = pair / s.batch;
      const int64_t n = pair % s.batch;
      const int64_t c0 = block * B;
      const int64_t cb = std::min(B, s.channels - c0);
      std::memset(tile.get(), 0, tile_size * sizeof(T));
      for (int64_t i = schedule.image_begin[n]; i < schedule.image_begin[n + 1]; ++i) {
        const int64_t k = schedule.order[i];
        gather_grad(a, s, k, c0, cb, grad_bins.get(), transpose);
        scatter_roi_fn(grad_bins.get(), taps[k], s.width, tile.get());
      }
      drain_tile(tile.get(), a, s, n, c0, cb, transpose, staging.get(), stream);
    }
    stream_fence();
  });
}

template void roi_align_backward_planar<float>(
    const RoiAlignBackwardArgs<float>&, const std::vector<RoiTaps<float>>&, const RoiAlignShape&);
template void roi_align_backward_planar<double>(
    const RoiAlignBackwardArgs<double>&, const std::vector<RoiTaps<double>>&,
    const RoiAlignShape&);

#define OVV_INSTANTIATE_BACKWARD(S, T)                                                   \
  template void roi_align_backward_blocked<S, T>(                                        \
      const RoiAlignBackwardArgs<S>&, const std::vector<RoiTaps<T>>&, const RoiAlignShape&);

OVV_INSTANTIATE_BACKWARD(float, float)
OVV_INSTANTIATE_BACKWARD(double, double)
OVV_INSTANTIATE_BACKWARD(c10::Half, float)
OVV_INSTANTIATE_BACKWARD(c10::BFloat16, float)
#undef OVV_INSTANTIATE_BACKWARD

}  // namespace ovvision
