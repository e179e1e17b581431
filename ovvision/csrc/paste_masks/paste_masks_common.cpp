#include <ATen/TensorOperators.h>
#include <ATen/ops/all.h>
#include <ATen/ops/isfinite.h>
#include <ATen/ops/stack.h>
#include <c10/util/Exception.h>

#include <cmath>

#include "paste_masks/paste_masks.h"

namespace ovvision {

void check_paste_masks_args(
    const at::Tensor& masks, const at::Tensor& boxes, int64_t height, int64_t width,
    int64_t padding, std::optional<double> threshold) {
  TORCH_CHECK(
      masks.dim() == 4 && masks.size(1) == 1,
      "ovvision::paste_masks: `masks` must have shape (N, 1, M_h, M_w), got shape ",
      masks.sizes());
  TORCH_CHECK(
      boxes.dim() == 2 && boxes.size(1) == 4 && boxes.size(0) == masks.size(0),
      "ovvision::paste_masks: `boxes` must have shape (N, 4) = (", masks.size(0),
      ", 4) holding (x1, y1, x2, y2), got shape ", boxes.sizes());
  TORCH_CHECK(
      at::isFloatingType(masks.scalar_type()),
      "ovvision::paste_masks: `masks` must be a floating-point tensor, got ", masks.scalar_type());
  TORCH_CHECK(
      at::isFloatingType(boxes.scalar_type()),
      "ovvision::paste_masks: `boxes` must be a floating-point tensor, got ", boxes.scalar_type());
  TORCH_CHECK(
      masks.device() == boxes.device(), "ovvision::paste_masks: `masks` is on ", masks.device(),
      " but `boxes` is on ", boxes.device());
  TORCH_CHECK(
      masks.size(0) == 0 || (masks.size(2) > 0 && masks.size(3) > 0),
      "ovvision::paste_masks: `masks` must not be empty, got shape ", masks.sizes());
  TORCH_CHECK(
      boxes.numel() == 0 || at::isfinite(boxes).all().item<bool>(),
      "ovvision::paste_masks: `boxes` must be finite");
  TORCH_CHECK(
      height >= 0 && width >= 0, "ovvision::paste_masks: `height` and `width` must be "
      "non-negative, got ", height, " and ", width);
  TORCH_CHECK(
      padding >= 0, "ovvision::paste_masks: `padding` must be non-negative, got ", padding);
  TORCH_CHECK(
      !threshold.has_value() || std::isfinite(*threshold),
      "ovvision::paste_masks: `threshold` must be finite, got ", threshold.value_or(0.0));
}

at::Tensor expand_paste_boxes(const at::Tensor& boxes, int64_t mask_width, int64_t padding) {
  const double scale = static_cast<double>(mask_width + 2 * padding) / mask_width;
  const at::Tensor x0 = boxes.select(1, 0);
  const at::Tensor y0 = boxes.select(1, 1);
  const at::Tensor x1 = boxes.select(1, 2);
  const at::Tensor y1 = boxes.select(1, 3);
  const at::Tensor w_half = (x1 - x0) * 0.5 * scale;
  const at::Tensor h_half = (y1 - y0) * 0.5 * scale;
  const at::Tensor x_c = (x1 + x0) * 0.5;
  const at::Tensor y_c = (y1 + y0) * 0.5;
  return at::stack({x_c - w_half, y_c - h_half, x_c + w_half, y_c + h_half}, 1)
      .to(at::kLong)
      .contiguous();
}

}  // namespace ovvision
