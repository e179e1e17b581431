// ROI geometry and per-axis bilinear taps for the CPU roi_align kernels.
//
// ROIAlign's sample grid is separable: the samples of bin (ph, pw) sit at every combination of
// grid_h rows and grid_w columns, a sample outside [-1, size] along either axis contributes 0,
// and the bilinear weight of a sample factors into a row weight times a column weight. So a bin
// is  sum_{y in rows(ph)} sum_{x in cols(pw)} wy * wx * input[y, x]  where rows(ph) holds the
// distinct pixel rows touched by the bin's samples with their summed weights (<= grid_h + 1
// rows for bins narrower than a pixel per sample, <= 2 * grid_h otherwise), and the same for
// columns. The kernels compute these once per ROI and apply them to whole channel vectors.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

namespace ovvision {

// One ROI in feature-map coordinates, with torchvision's conventions (half-pixel offset when
// aligned, ROIs at least 1x1 when not aligned, adaptive grid = ceil(bin size)).
template <typename T>
struct RoiGeometry {
  int64_t batch;
  T y0, x0;
  T bin_h, bin_w;
  int64_t grid_h, grid_w;
  T inv_count;
};

template <typename T>
inline int64_t adaptive_grid(T bin_size) {
  return (std::isfinite(bin_size) && bin_size > 0) ? static_cast<int64_t>(std::ceil(bin_size)) : 0;
}

template <typename T>
inline RoiGeometry<T> roi_geometry(
    const T* roi,
    T spatial_scale,
    bool aligned,
    int64_t pooled_h,
    int64_t pooled_w,
    int64_t sampling_ratio) {
  RoiGeometry<T> g;
  g.batch = static_cast<int64_t>(roi[0]);
  const T offset = aligned ? T(0.5) : T(0);
  g.x0 = roi[1] * spatial_scale - offset;
  g.y0 = roi[2] * spatial_scale - offset;
  T roi_w = roi[3] * spatial_scale - offset - g.x0;
  T roi_h = roi[4] * spatial_scale - offset - g.y0;
  if (!aligned) {
    roi_w = std::max(roi_w, T(1));
    roi_h = std::max(roi_h, T(1));
  }
  g.bin_h = roi_h / static_cast<T>(pooled_h);
  g.bin_w = roi_w / static_cast<T>(pooled_w);
  g.grid_h = sampling_ratio > 0 ? sampling_ratio : adaptive_grid(g.bin_h);
  g.grid_w = sampling_ratio > 0 ? sampling_ratio : adaptive_grid(g.bin_w);
  g.inv_count = T(1) / static_cast<T>(std::max<int64_t>(g.grid_h * g.grid_w, 1));
  return g;
}

// Distinct pixel indices and summed bilinear weights of the samples of each bin along one axis.
template <typename T>
struct AxisTaps {
  std::vector<int64_t> begin;  // taps of bin p are [begin[p], begin[p + 1])
  std::vector<int64_t> index;
  std::vector<T> weight;

  // Bins start at `start + p * bin_size`; every weight is multiplied by `scale`.
  void build(T start, T bin_size, int64_t pooled, int64_t grid, int64_t size, T scale) {
    begin.resize(pooled + 1);
    index.clear();
    weight.clear();
    for (int64_t p = 0; p < pooled; ++p) {
      begin[p] = static_cast<int64_t>(index.size());
      for (int64_t i = 0; i < grid; ++i) {
        T v = start + static_cast<T>(p) * bin_size +
              static_cast<T>(static_cast<float>(i) + .5f) * bin_size / static_cast<T>(grid);
        if (!(v >= T(-1) && v <= static_cast<T>(size))) {
          continue;  // outside the map (or NaN): the whole sample contributes 0
        }
        v = std::max(v, T(0));
        int64_t lo = static_cast<int64_t>(v);
        int64_t hi = lo + 1;
        if (lo >= size - 1) {
          lo = hi = size - 1;
          v = static_cast<T>(lo);
        }
        const T frac = v - static_cast<T>(lo);
        add(begin[p], lo, (T(1) - frac) * scale);
        add(begin[p], hi, frac * scale);
      }
    }
    begin[pooled] = static_cast<int64_t>(index.size());
  }

 private:
  // Samples of a bin move monotonically, so a repeated pixel is among the last few taps; an
  // unmerged repeat would only cost time, never change the result.
  void add(int64_t first, int64_t idx, T w) {
    const int64_t last = static_cast<int64_t>(index.size()) - 1;
    for (int64_t t = last; t >= std::max(first, last - 3); --t) {
      if (index[t] == idx) {
        weight[t] += w;
        return;
      }
    }
    index.push_back(idx);
    weight.push_back(w);
  }
};

// Row and column taps of one ROI; the row weights carry the 1 / count of the bin average.
template <typename T>
struct RoiTaps {
  int64_t batch = 0;
  AxisTaps<T> rows;
  AxisTaps<T> cols;

  void build(const RoiGeometry<T>& g, int64_t pooled_h, int64_t pooled_w, int64_t h, int64_t w) {
    batch = g.batch;
    rows.build(g.y0, g.bin_h, pooled_h, g.grid_h, h, g.inv_count);
    cols.build(g.x0, g.bin_w, pooled_w, g.grid_w, w, T(1));
  }
};

}  // namespace ovvision
