// roi_align forward on CPU: a planar kernel for few ROIs and a channel-blocked kernel (vector
// FMAs over a cache line of channels, L2-resident tile per block) for everything else.
#include <c10/util/BFloat16.h>
#include <c10/util/Half.h>

#include <algorithm>
#include <memory>

#include "common/cpu_isa.h"
#include "common/parallel.h"
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

// sum over the columns [c_begin, c_end) of one tap row: h[0] + h[1] (even and odd columns,
// two independent FMA chains), column weights broadcast straight from memory.
template <typename V, int NV, typename T>
OVV_ALWAYS_INLINE void row_sum(
    const AxisTaps<T>& cols, int64_t c_begin, int64_t c_end, const T* row, V (&h)[2][NV]) {
  constexpr int64_t B = kChannelBlock<T>;
  for (int a = 0; a < 2; ++a) {
    for (int j = 0; j < NV; ++j) {
      h[a][j] = V{};
    }
  }
  int64_t ix = c_begin;
  for (; ix + 1 < c_end; ix += 2) {
    axpy<V, NV>(h[0], cols.weight[ix], row + cols.index[ix] * B);
    axpy<V, NV>(h[1], cols.weight[ix + 1], row + cols.index[ix + 1] * B);
  }
  if (ix < c_end) {
    axpy<V, NV>(h[0], cols.weight[ix], row + cols.index[ix] * B);
  }
}

// bins[(ph * PW + pw) * B + j] for one ROI from a (H, W, B) tile. Separable: each tap row is
// summed over the bin's columns with the column weights, then scaled by its row weight, so no
// per-tap weight products are formed; two rows at a time keep four FMA chains in flight.
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
      V acc[NV];
      for (int j = 0; j < NV; ++j) {
        acc[j] = V{};
      }
      int64_t iy = rows.begin[ph];
      for (; iy + 1 < r_end; iy += 2) {
        V h0[2][NV];
        V h1[2][NV];
        row_sum<V, NV>(cols, c_begin, c_end, img + rows.index[iy] * row_stride, h0);
        row_sum<V, NV>(cols, c_begin, c_end, img + rows.index[iy + 1] * row_stride, h1);
        const T wy0 = rows.weight[iy];
        const T wy1 = rows.weight[iy + 1];
        for (int j = 0; j < NV; ++j) {
          acc[j] += wy0 * (h0[0][j] + h0[1][j]) + wy1 * (h1[0][j] + h1[1][j]);
        }
      }
      if (iy < r_end) {
        V h0[2][NV];
        row_sum<V, NV>(cols, c_begin, c_end, img + rows.index[iy] * row_stride, h0);
        const T wy0 = rows.weight[iy];
        for (int j = 0; j < NV; ++j) {
          acc[j] += wy0 * (h0[0][j] + h0[1][j]);
        }
      }
      T* out = bins + (ph * pooled_w + pw) * B;
      for (int j = 0; j < NV; ++j) {
        vstore(out + j * L, acc[j]);
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

// How far ahead a channels-last tile fill prefetches: no hardware prefetcher follows a stride
// of one pixel (C elements) across pages.
constexpr int64_t kPrefetchPixels = 32;

// tile (H, W, B) <- channels [c0, c0 + cb) of image n, zero beyond cb. From NCHW, square
// blocks are transposed in registers; from channels-last, each pixel gives one cache line.
template <typename S, typename T>
void fill_tile(
    const RoiAlignForwardArgs<S>& a, const RoiAlignShape& s, int64_t n, int64_t c0, int64_t cb,
    T* tile, TransposeFn<T> transpose) {
  constexpr int64_t B = kChannelBlock<T>;
  const int64_t hw = s.height * s.width;
  if (a.input_channels_last) {
    const int64_t C = s.channels;
    const S* src = a.input + n * hw * C + c0;
    for (int64_t p = 0; p < hw; ++p) {
      __builtin_prefetch(src + (p + kPrefetchPixels) * C);
      for (int64_t j = 0; j < cb; ++j) {
        tile[p * B + j] = static_cast<T>(src[p * C + j]);
      }
    }
  } else {
    transpose_rect(a.input + (n * s.channels + c0) * hw, hw, cb, hw, tile, B, transpose);
  }
  for (int64_t p = 0; cb < B && p < hw; ++p) {
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
  // Element strides of a channel and of a pixel in the input, of a channel and of a bin in
  // the output, for NCHW or channels-last.
  const int64_t in_channel = a.input_channels_last ? 1 : plane;
  const int64_t in_pixel = a.input_channels_last ? C : 1;
  const int64_t out_channel = a.output_channels_last ? 1 : nbins;
  const int64_t out_bin = a.output_channels_last ? C : 1;
  const int64_t units = s.num_rois * C;  // one (ROI, channel) pair each
  parallel_workers(units, 32, units * roi_channel_work(s), [&](ChunkQueue& queue) {
    for (int64_t begin, end; queue.pop(begin, end);) {
      for (int64_t u = begin; u < end; ++u) {
        const int64_t k = u / C;
        const int64_t c = u % C;
        const RoiTaps<T>& t = taps[k];
        const S* img = a.input + t.batch * C * plane + c * in_channel;
        S* out = a.output + k * C * nbins + c * out_channel;
        for (int64_t ph = 0; ph < s.pooled_h; ++ph) {
          for (int64_t pw = 0; pw < s.pooled_w; ++pw) {
            const T v = bin_scalar(img, s.width, in_pixel, t, ph, pw);
            out[(ph * s.pooled_w + pw) * out_bin] = static_cast<S>(v);
          }
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
  // Tasks are (block, image, chunk of the image's ROIs); an image's ROIs are split into chunks
  // only when there are too few (block, image) pairs to keep every thread busy.
  const int64_t pairs = blocks * s.batch;
  const int64_t chunks = std::clamp<int64_t>(
      (4 * at::get_num_threads() + pairs - 1) / pairs, 1, std::max<int64_t>(s.num_rois, 1));
  const int64_t tile_size = s.height * s.width * B;
  const ForwardRoiFn<T> forward_roi_fn = select_forward_roi<T>();
  const TransposeFn<T> transpose = select_transpose<T>();
  const RoiSchedule schedule = schedule_rois(taps, s.batch);
  const int64_t out_bytes = s.num_rois * s.channels * s.pooled_h * s.pooled_w * sizeof(S);
  const bool stream = out_bytes >= kStreamBytes;
  const int64_t work = blocks * (s.num_rois * B * roi_channel_work(s) + s.batch * tile_size);
  parallel_workers(pairs * chunks, 1, work, [&](ChunkQueue& queue) {
    const std::unique_ptr<T[]> tile(new T[tile_size]);
    const std::unique_ptr<T[]> bins(new T[s.pooled_h * s.pooled_w * B]);
    const std::unique_ptr<T[]> staging(new T[s.pooled_h * s.pooled_w * B]);
    int64_t filled = -1;
    for (int64_t task, task_end; queue.pop(task, task_end);) {
      const int64_t pair = task / chunks;  // block * batch + image
      const int64_t chunk = task % chunks;
      const int64_t block = pair / s.batch;
      const int64_t n = pair % s.batch;
      const int64_t first = schedule.image_begin[n];
      const int64_t count = schedule.image_begin[n + 1] - first;
      if (count * (chunk + 1) / chunks == count * chunk / chunks) {
        continue;  // no ROIs in this chunk: skip filling the tile
      }
      const int64_t c0 = block * B;
      const int64_t cb = std::min(B, s.channels - c0);
      if (pair != filled) {
        fill_tile(a, s, n, c0, cb, tile.get(), transpose);
        filled = pair;
      }
      const int64_t end = first + count * (chunk + 1) / chunks;
      for (int64_t i = first + count * chunk / chunks; i < end; ++i) {
        const int64_t k = schedule.order[i];
        forward_roi_fn(tile.get(), taps[k], s.width, bins.get());
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
