// Shared pieces of the paste_masks kernels (CPU and CUDA).
//
// Semantics follow torchvision's paste_masks_in_image: each (M_h, M_w) mask is zero-padded by
// `padding` pixels, its box is scaled about its centre by (M_w + 2 * padding) / M_w and truncated
// to integers (x0, y0, x1, y1); the padded mask is resized bilinearly (align_corners=False) to
// (y1 - y0 + 1, x1 - x0 + 1) and written at (y0, x0), clipped to the image; everything else is 0.
//
// exact_box mode: the mask is sampled on the unrounded box as F.grid_sample(align_corners=False,
// padding_mode="zeros") does: pixel x maps to mask column ((x + 0.5 - x1) / w * 2 - 1 + 1) * M_w / 2
// - 0.5 with w = max(x2 - x1, 1e-6), bilinear taps outside the mask count as 0 (rows alike).
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>

namespace ovvision {

// Raise (TORCH_CHECK, naming the argument) unless the arguments are valid.
void check_paste_masks_args(
    const at::Tensor& masks, const at::Tensor& boxes, int64_t height, int64_t width,
    int64_t padding, std::optional<double> threshold);

// (N, 4) int64 (x0, y0, x1, y1): the boxes scaled for the padding and truncated, computed with
// the same tensor arithmetic (and dtype) as torchvision so that the integer boxes agree exactly.
at::Tensor expand_paste_boxes(const at::Tensor& boxes, int64_t mask_width, int64_t padding);

// Source position along one axis of the exact_box mode: pixel `i` of a box starting at `lo` of
// extent `size` (already clamped to >= 1e-6) in a mask of `mask_len` cells, with the arithmetic of
// the grid_sample paste (normalise to [-1, 1], then unnormalise with align_corners=False).
#ifdef __CUDACC__
#define OVVISION_HOST_DEVICE __host__ __device__
#else
#define OVVISION_HOST_DEVICE
#endif

template <typename T>
OVVISION_HOST_DEVICE inline T exact_box_source(int64_t i, T lo, T size, int64_t mask_len) {
  const T g = (static_cast<T>(i) + T(0.5) - lo) / size * T(2) - T(1);
  return (g + T(1)) * (static_cast<T>(mask_len) * T(0.5)) - T(0.5);
}

}  // namespace ovvision
