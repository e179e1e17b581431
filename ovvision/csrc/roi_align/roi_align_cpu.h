// CPU roi_align kernels on raw buffers. S is the storage type of input/output (float, double,
// Half, BFloat16); T the compute type (double for double, float otherwise).
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <tuple>
#include <vector>

#include "common/transpose.h"
#include "roi_align/roi_align_taps.h"

namespace ovvision {

struct RoiAlignShape {
  int64_t batch, channels, height, width;
  int64_t num_rois, pooled_h, pooled_w;
  int64_t sampling_ratio;
  bool aligned;
};

// Channels are processed in blocks of one cache line (16 floats, 8 doubles).
template <typename T>
constexpr int64_t kChannelBlock = kLineElems<T>;

// Multiply-adds of one channel of one ROI, assuming about (grid + 1)^2 taps per bin.
inline int64_t roi_channel_work(const RoiAlignShape& s) {
  const int64_t grid = s.sampling_ratio > 0 ? s.sampling_ratio : 2;
  return s.pooled_h * s.pooled_w * (grid + 1) * (grid + 1);
}

// Row and column taps of every ROI, built in parallel; rois is (K, 5), batch indices checked.
template <typename T>
std::vector<RoiTaps<T>> build_roi_taps(const T* rois, T spatial_scale, const RoiAlignShape& s);

// The order in which the blocked kernels visit ROIs: by image, then top row, then left
// column, so that consecutive ROIs touch nearby pixels of a tile. The ROIs of image n are
// order[image_begin[n] : image_begin[n + 1]].
struct RoiSchedule {
  std::vector<int64_t> order;
  std::vector<int64_t> image_begin;
};

template <typename T>
RoiSchedule schedule_rois(const std::vector<RoiTaps<T>>& taps, int64_t batch) {
  RoiSchedule s;
  s.order.resize(taps.size());
  std::iota(s.order.begin(), s.order.end(), int64_t(0));
  const auto key = [&](int64_t k) {
    const RoiTaps<T>& t = taps[k];
    return std::make_tuple(
        t.batch, t.rows.index.empty() ? int64_t(-1) : t.rows.index[0],
        t.cols.index.empty() ? int64_t(-1) : t.cols.index[0]);
  };
  std::sort(s.order.begin(), s.order.end(), [&](int64_t a, int64_t b) { return key(a) < key(b); });
  s.image_begin.assign(batch + 1, 0);
  for (const RoiTaps<T>& t : taps) {
    ++s.image_begin[t.batch + 1];
  }
  std::partial_sum(s.image_begin.begin(), s.image_begin.end(), s.image_begin.begin());
  return s;
}

template <typename S>
struct RoiAlignForwardArgs {
  const S* input;  // (N, C, H, W) contiguous, or (N, H, W, C) when input_channels_last
  bool input_channels_last;
  S* output;  // (K, C, PH, PW) contiguous, or (K, PH, PW, C) when output_channels_last
  bool output_channels_last;
};

template <typename S>
struct RoiAlignBackwardArgs {
  const S* grad;  // (K, C, PH, PW) with arbitrary strides
  int64_t grad_strides[4];
  S* grad_input;  // (N, C, H, W) contiguous, or (N, H, W, C) when channels_last; fully written
  bool channels_last;
};

// Per (ROI, channel): scalar gathers from an NCHW or channels-last map. Best for few ROIs on
// a large map.
template <typename S, typename T>
void roi_align_forward_planar(
    const RoiAlignForwardArgs<S>& args, const std::vector<RoiTaps<T>>& taps,
    const RoiAlignShape& s);

// Per (channel block, image): that part of the map is copied into an (H, W, block) tile that
// stays in L2, then every ROI of the image is pooled from it with vector FMAs over the block.
template <typename S, typename T>
void roi_align_forward_blocked(
    const RoiAlignForwardArgs<S>& args, const std::vector<RoiTaps<T>>& taps,
    const RoiAlignShape& s);

// Per channel (each thread owns its channels, no atomics): scalar scatter into a zero-filled
// NCHW grad_input of type T.
template <typename T>
void roi_align_backward_planar(
    const RoiAlignBackwardArgs<T>& args, const std::vector<RoiTaps<T>>& taps,
    const RoiAlignShape& s);

// Per (channel block, image), each owned by one thread (no atomics): every ROI of the image
// scatters into a zeroed (H, W, block) tile, which is then written out to grad_input once.
template <typename S, typename T>
void roi_align_backward_blocked(
    const RoiAlignBackwardArgs<S>& args, const std::vector<RoiTaps<T>>& taps,
    const RoiAlignShape& s);

}  // namespace ovvision
