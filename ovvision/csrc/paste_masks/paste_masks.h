// Shared pieces of the paste_masks kernels (CPU and CUDA).
//
// Semantics follow torchvision's paste_masks_in_image: each (M_h, M_w) mask is zero-padded by
// `padding` pixels, its box is scaled about its centre by (M_w + 2 * padding) / M_w and truncated
// to integers (x0, y0, x1, y1); the padded mask is resized bilinearly (align_corners=False) to
// (y1 - y0 + 1, x1 - x0 + 1) and written at (y0, x0), clipped to the image; everything else is 0.
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

}  // namespace ovvision
