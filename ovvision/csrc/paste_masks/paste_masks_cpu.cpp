// paste_masks on CPU: one fused pass that writes every output row once (zeros outside the
// pasted box, the bilinear resize of the padded mask inside), parallel over rows of all masks;
// both modes (truncated and exact_box) share it and differ only in their taps.
// Into fresh zero-filled memory only the rows a box reaches are written.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <tuple>
#include <type_traits>
#include <utility>
#include <vector>

#include "common/large_alloc.h"
#include "common/parallel.h"
#include "common/stream_store.h"
#include "paste_masks/paste_masks.h"

namespace ovvision {
namespace {

// Source index and weights of output pixel i when resizing `in` pixels to `out` pixels, as in
// ATen's bilinear upsampling with align_corners=False.
template <typename T>
struct Lerp {
  int64_t i0, i1;
  T w0, w1;
};

template <typename T>
Lerp<T> lerp_at(int64_t i, int64_t in, T scale) {
  T src = scale * (static_cast<T>(i) + T(0.5)) - T(0.5);
  src = std::max(src, T(0));
  const int64_t i0 = std::min(static_cast<int64_t>(std::floor(src)), in - 1);
  const T w1 = std::min(std::max(src - static_cast<T>(i0), T(0)), T(1));
  return {i0, i0 + (i0 < in - 1 ? 1 : 0), T(1) - w1, w1};
}

// Taps of pixel i in the exact_box mode, as indices into the mask zero-padded by one cell (so
// taps just outside the mask read a zero); taps further out get weight 0.
template <typename T>
Lerp<T> exact_lerp_at(int64_t i, T lo, T size, int64_t mask_len) {
  T src = exact_box_source(i, lo, size, mask_len);
  src = std::min(std::max(src, T(-2)), static_cast<T>(mask_len + 1));
  const int64_t f = static_cast<int64_t>(std::floor(src));
  const T w1 = src - static_cast<T>(f);
  Lerp<T> l{f + 1, f + 2, T(1) - w1, w1};
  if (l.i0 < 0 || l.i0 > mask_len + 1) {
    l.i0 = 0;
    l.w0 = T(0);
  }
  if (l.i1 < 0 || l.i1 > mask_len + 1) {
    l.i1 = 0;
    l.w1 = T(0);
  }
  return l;
}

// First and one-past-last pixel along one axis that a mask on [lo, lo + size] can reach in the
// exact_box mode: half a mask cell beyond the box, plus one pixel for rounding.
template <typename T>
std::pair<int64_t, int64_t> exact_window(T lo, T size, int64_t mask_len, int64_t limit) {
  const double margin = static_cast<double>(size) / (2.0 * mask_len) + 1.0;
  const double start = std::floor(static_cast<double>(lo) - margin);
  const double end = std::ceil(static_cast<double>(lo) + static_cast<double>(size) + margin);
  return {static_cast<int64_t>(std::max(start, 0.0)),
          static_cast<int64_t>(std::min(end, static_cast<double>(limit)))};
}

// One mask prepared for pasting: its zero-padded copy, pasted region and column weights.
template <typename T>
struct PreparedMask {
  bool exact = false;
  int64_t y0 = 0, box_h = 1;             // truncated mode: box top and height in the image
  T top = 0, box_size_h = 1;              // exact_box mode: unrounded top and height
  int64_t mask_h = 0;
  int64_t xs = 0, xe = 0, ys = 0, ye = 0;  // clipped paste region [xs, xe) x [ys, ye)
  int64_t padded_h = 0, padded_w = 0;
  T scale_h = 1;
  std::vector<T> padded;        // (padded_h, padded_w)
  std::vector<Lerp<T>> cols;    // for x in [xs, xe)

  // Whether output row y holds any pixel of the pasted box.
  bool covers_row(int64_t y) const {
    return y >= ys && y < ye && xs < xe;
  }

  Lerp<T> row_taps(int64_t y) const {
    return exact ? exact_lerp_at(y, top, box_size_h, mask_h) : lerp_at(y - y0, padded_h, scale_h);
  }
};

template <typename S, typename T>
void pad_mask(const S* mask, int64_t mask_h, int64_t mask_w, int64_t padding, PreparedMask<T>& pm) {
  pm.mask_h = mask_h;
  pm.padded_h = mask_h + 2 * padding;
  pm.padded_w = mask_w + 2 * padding;
  pm.padded.assign(pm.padded_h * pm.padded_w, T(0));
  for (int64_t i = 0; i < mask_h; ++i) {
    for (int64_t j = 0; j < mask_w; ++j) {
      pm.padded[(i + padding) * pm.padded_w + j + padding] = static_cast<T>(mask[i * mask_w + j]);
    }
  }
}

// Truncated (torchvision) mode: `box` is the padded box truncated to integers.
template <typename S, typename T>
void prepare_mask(
    const S* mask, int64_t mask_h, int64_t mask_w, int64_t padding, const int64_t* box,
    int64_t height, int64_t width, PreparedMask<T>& pm) {
  pm.exact = false;
  pm.y0 = box[1];
  const int64_t box_w = std::max<int64_t>(box[2] - box[0] + 1, 1);
  pm.box_h = std::max<int64_t>(box[3] - box[1] + 1, 1);
  pm.xs = std::max<int64_t>(box[0], 0);
  pm.xe = std::min<int64_t>(box[2] + 1, width);
  pm.ys = std::max<int64_t>(box[1], 0);
  pm.ye = std::min<int64_t>(box[3] + 1, height);
  pad_mask(mask, mask_h, mask_w, padding, pm);
  pm.scale_h = static_cast<T>(pm.padded_h) / static_cast<T>(pm.box_h);
  const T scale_w = static_cast<T>(pm.padded_w) / static_cast<T>(box_w);
  pm.cols.clear();
  for (int64_t x = pm.xs; x < pm.xe; ++x) {
    pm.cols.push_back(lerp_at(x - box[0], pm.padded_w, scale_w));
  }
}

// exact_box mode: `box` is the unrounded (x1, y1, x2, y2).
template <typename S, typename T>
void prepare_mask(
    const S* mask, int64_t mask_h, int64_t mask_w, const T* box, int64_t height, int64_t width,
    PreparedMask<T>& pm) {
  pm.exact = true;
  const T size_w = std::max(box[2] - box[0], T(1e-6));
  pm.top = box[1];
  pm.box_size_h = std::max(box[3] - box[1], T(1e-6));
  std::tie(pm.xs, pm.xe) = exact_window(box[0], size_w, mask_w, width);
  std::tie(pm.ys, pm.ye) = exact_window(pm.top, pm.box_size_h, mask_h, height);
  pad_mask(mask, mask_h, mask_w, 1, pm);
  pm.cols.clear();
  for (int64_t x = pm.xs; x < pm.xe; ++x) {
    pm.cols.push_back(exact_lerp_at(x, box[0], size_w, mask_w));
  }
}

// Output row y of one mask into `row` (width elements).
template <typename T, typename O>
void paste_row(const PreparedMask<T>& pm, int64_t y, int64_t width, T threshold, bool binary,
               T* vrow, O* row) {
  std::fill(row, row + width, O(0));
  if (!pm.covers_row(y)) {
    return;
  }
  const Lerp<T> ly = pm.row_taps(y);
  const T* r0 = pm.padded.data() + ly.i0 * pm.padded_w;
  const T* r1 = pm.padded.data() + ly.i1 * pm.padded_w;
  for (int64_t i = 0; i < pm.padded_w; ++i) {
    vrow[i] = ly.w0 * r0[i] + ly.w1 * r1[i];
  }
  for (int64_t x = pm.xs; x < pm.xe; ++x) {
    const Lerp<T>& lx = pm.cols[x - pm.xs];
    const T v = lx.w0 * vrow[lx.i0] + lx.w1 * vrow[lx.i1];
    row[x] = binary ? O(v >= threshold) : static_cast<O>(v);
  }
}

// `out_is_zero`: the output memory already holds zeros (fresh from the kernel), so rows that no
// box reaches are left untouched rather than written with zeros.
// `boxes`: (N, 4) int64 truncated padded boxes, or (N, 4) T unrounded boxes in exact_box mode.
template <typename S, typename T, typename O>
void paste_masks_kernel(
    const at::Tensor& masks, const at::Tensor& boxes_in, int64_t padding,
    std::optional<double> threshold, bool exact_box, bool out_is_zero, at::Tensor& out) {
  const int64_t n_masks = masks.size(0);
  const int64_t mask_h = masks.size(2);
  const int64_t mask_w = masks.size(3);
  const int64_t height = out.size(2);
  const int64_t width = out.size(3);
  const S* mask_data = masks.data_ptr<S>();
  const int64_t* int_boxes = exact_box ? nullptr : boxes_in.data_ptr<int64_t>();
  const T* exact_boxes = exact_box ? boxes_in.data_ptr<T>() : nullptr;
  O* out_data = out.data_ptr<O>();
  const bool binary = threshold.has_value();
  const T thr = static_cast<T>(threshold.value_or(0.0));
  const bool stream = static_cast<int64_t>(out.nbytes()) >= kStreamBytes;
  const int64_t rows = n_masks * height;
  parallel_workers(rows, 16, rows * width, [&](ChunkQueue& queue) {
    PreparedMask<T> pm;
    std::vector<T> vrow;
    const std::unique_ptr<O[]> row(new O[width]);
    int64_t current = -1;
    for (int64_t begin, end; queue.pop(begin, end);) {
      for (int64_t r = begin; r < end; ++r) {
        const int64_t n = r / height;
        if (n != current) {
          const S* mask = mask_data + n * mask_h * mask_w;
          if (exact_box) {
            prepare_mask(mask, mask_h, mask_w, exact_boxes + 4 * n, height, width, pm);
          } else {
            prepare_mask(mask, mask_h, mask_w, padding, int_boxes + 4 * n, height, width, pm);
          }
          vrow.resize(pm.padded_w);
          current = n;
        }
        const int64_t y = r % height;
        if (out_is_zero && !pm.covers_row(y)) {
          continue;
        }
        paste_row(pm, y, width, thr, binary, vrow.data(), row.get());
        copy_out(out_data + r * width, row.get(), width, stream);
      }
    }
    stream_fence();
  });
}

at::Tensor paste_masks_cpu(
    const at::Tensor& masks, const at::Tensor& boxes, int64_t height, int64_t width,
    int64_t padding, std::optional<double> threshold, bool exact_box) {
  check_paste_masks_args(masks, boxes, height, width, padding, threshold);
  const at::ScalarType out_type = threshold.has_value() ? at::kBool : masks.scalar_type();
  const std::array<int64_t, 4> sizes{masks.size(0), 1, height, width};
  bool out_is_zero = false;
  at::Tensor out = empty_large(
      sizes, masks.options().dtype(out_type), at::MemoryFormat::Contiguous, out_is_zero);
  if (out.numel() == 0) {
    return out;
  }
  const at::Tensor m = masks.contiguous();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, m.scalar_type(), "paste_masks", [&] {
    using T = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const at::Tensor b = exact_box ? boxes.to(c10::CppTypeToScalarType<T>::value).contiguous()
                                   : expand_paste_boxes(boxes, masks.size(3), padding);
    if (threshold.has_value()) {
      paste_masks_kernel<scalar_t, T, bool>(m, b, padding, threshold, exact_box, out_is_zero, out);
    } else {
      paste_masks_kernel<scalar_t, T, scalar_t>(
          m, b, padding, threshold, exact_box, out_is_zero, out);
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(ovvision, CPU, m) {
  m.impl("paste_masks", TORCH_FN(paste_masks_cpu));
}

}  // namespace ovvision
