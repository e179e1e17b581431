// paste_masks on CPU: one fused pass that writes every output row once (zeros outside the
// pasted box, the bilinear resize of the padded mask inside), parallel over rows of all masks.
// Into fresh zero-filled memory only the rows a box reaches are written.
#include <ATen/Dispatch.h>
#include <torch/library.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <memory>
#include <type_traits>
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

// One mask prepared for pasting: its zero-padded copy, pasted box and column weights.
template <typename T>
struct PreparedMask {
  int64_t x0 = 0, y0 = 0, box_h = 1;     // box origin and height in the image
  int64_t xs = 0, xe = 0, ys = 0, ye = 0;  // clipped paste region [xs, xe) x [ys, ye)
  int64_t padded_h = 0, padded_w = 0;
  T scale_h = 1;
  std::vector<T> padded;        // (padded_h, padded_w)
  std::vector<Lerp<T>> cols;    // for x in [xs, xe)

  // Whether output row y holds any pixel of the pasted box.
  bool covers_row(int64_t y) const {
    return y >= ys && y < ye && xs < xe;
  }
};

template <typename S, typename T>
void prepare_mask(
    const S* mask, int64_t mask_h, int64_t mask_w, int64_t padding, const int64_t* box,
    int64_t height, int64_t width, PreparedMask<T>& pm) {
  pm.x0 = box[0];
  pm.y0 = box[1];
  const int64_t box_w = std::max<int64_t>(box[2] - box[0] + 1, 1);
  pm.box_h = std::max<int64_t>(box[3] - box[1] + 1, 1);
  pm.xs = std::max<int64_t>(box[0], 0);
  pm.xe = std::min<int64_t>(box[2] + 1, width);
  pm.ys = std::max<int64_t>(box[1], 0);
  pm.ye = std::min<int64_t>(box[3] + 1, height);
  pm.padded_h = mask_h + 2 * padding;
  pm.padded_w = mask_w + 2 * padding;
  pm.scale_h = static_cast<T>(pm.padded_h) / static_cast<T>(pm.box_h);
  pm.padded.assign(pm.padded_h * pm.padded_w, T(0));
  for (int64_t i = 0; i < mask_h; ++i) {
    for (int64_t j = 0; j < mask_w; ++j) {
      pm.padded[(i + padding) * pm.padded_w + j + padding] = static_cast<T>(mask[i * mask_w + j]);
    }
  }
  const T scale_w = static_cast<T>(pm.padded_w) / static_cast<T>(box_w);
  pm.cols.clear();
  for (int64_t x = pm.xs; x < pm.xe; ++x) {
    pm.cols.push_back(lerp_at(x - pm.x0, pm.padded_w, scale_w));
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
  const Lerp<T> ly = lerp_at(y - pm.y0, pm.padded_h, pm.scale_h);
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
template <typename S, typename T, typename O>
void paste_masks_kernel(
    const at::Tensor& masks, const at::Tensor& int_boxes, int64_t padding,
    std::optional<double> threshold, bool out_is_zero, at::Tensor& out) {
  const int64_t n_masks = masks.size(0);
  const int64_t mask_h = masks.size(2);
  const int64_t mask_w = masks.size(3);
  const int64_t height = out.size(2);
  const int64_t width = out.size(3);
  const S* mask_data = masks.data_ptr<S>();
  const int64_t* boxes = int_boxes.data_ptr<int64_t>();
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
          prepare_mask(mask_data + n * mask_h * mask_w, mask_h, mask_w, padding, boxes + 4 * n,
                       height, width, pm);
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
    int64_t padding, std::optional<double> threshold) {
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
  const at::Tensor int_boxes = expand_paste_boxes(boxes, masks.size(3), padding);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, m.scalar_type(), "paste_masks", [&] {
    using T = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    if (threshold.has_value()) {
      paste_masks_kernel<scalar_t, T, bool>(m, int_boxes, padding, threshold, out_is_zero, out);
    } else {
      paste_masks_kernel<scalar_t, T, scalar_t>(
          m, int_boxes, padding, threshold, out_is_zero, out);
    }
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(ovvision, CPU, m) {
  m.impl("paste_masks", TORCH_FN(paste_masks_cpu));
}

}  // namespace ovvision
