#include <c10/util/Exception.h>

#include <cmath>

#include "roi_align/roi_align.h"

namespace ovvision {

void check_roi_align_args(
    const at::Tensor& input,
    const at::Tensor& rois,
    double spatial_scale,
    int64_t pooled_height,
    int64_t pooled_width) {
  TORCH_CHECK(
      input.dim() == 4,
      "ovvision::roi_align: `input` must be a 4-D tensor (N, C, H, W), got shape ", input.sizes());
  TORCH_CHECK(
      rois.dim() == 2 && rois.size(1) == 5,
      "ovvision::roi_align: `rois` must have shape (K, 5) holding (batch_index, x1, y1, x2, y2), "
      "got shape ",
      rois.sizes());
  TORCH_CHECK(
      at::isFloatingType(input.scalar_type()),
      "ovvision::roi_align: `input` must be a floating-point tensor, got ", input.scalar_type());
  TORCH_CHECK(
      at::isFloatingType(rois.scalar_type()),
      "ovvision::roi_align: `rois` must be a floating-point tensor, got ", rois.scalar_type());
  TORCH_CHECK(
      input.device() == rois.device(), "ovvision::roi_align: `input` is on ", input.device(),
      " but `rois` is on ", rois.device());
  TORCH_CHECK(
      pooled_height > 0 && pooled_width > 0,
      "ovvision::roi_align: `pooled_height` and `pooled_width` must be positive, got ",
      pooled_height, " and ", pooled_width);
  TORCH_CHECK(
      std::isfinite(spatial_scale) && spatial_scale > 0,
      "ovvision::roi_align: `spatial_scale` must be a positive finite number, got ", spatial_scale);
  TORCH_CHECK(
      rois.size(0) == 0 || (input.size(2) > 0 && input.size(3) > 0),
      "ovvision::roi_align: `input` has an empty spatial size ", input.sizes(),
      " but `rois` is not empty");
}

void check_roi_align_backward_args(
    const at::Tensor& grad,
    const at::Tensor& rois,
    double spatial_scale,
    int64_t pooled_height,
    int64_t pooled_width,
    int64_t batch_size,
    int64_t channels,
    int64_t height,
    int64_t width) {
  TORCH_CHECK(
      rois.dim() == 2 && rois.size(1) == 5,
      "ovvision::_roi_align_backward: `rois` must have shape (K, 5), got shape ", rois.sizes());
  TORCH_CHECK(
      grad.dim() == 4 && grad.size(0) == rois.size(0) && grad.size(1) == channels &&
          grad.size(2) == pooled_height && grad.size(3) == pooled_width,
      "ovvision::_roi_align_backward: `grad` must have shape (K, channels, pooled_height, "
      "pooled_width) = (",
      rois.size(0), ", ", channels, ", ", pooled_height, ", ", pooled_width, "), got shape ",
      grad.sizes());
  TORCH_CHECK(
      at::isFloatingType(grad.scalar_type()) && at::isFloatingType(rois.scalar_type()),
      "ovvision::_roi_align_backward: `grad` and `rois` must be floating-point tensors, got ",
      grad.scalar_type(), " and ", rois.scalar_type());
  TORCH_CHECK(
      grad.device() == rois.device(), "ovvision::_roi_align_backward: `grad` is on ", grad.device(),
      " but `rois` is on ", rois.device());
  TORCH_CHECK(
      batch_size >= 0 && channels >= 0 && height >= 0 && width >= 0,
      "ovvision::_roi_align_backward: `batch_size`, `channels`, `height` and `width` must be "
      "non-negative, got ",
      batch_size, ", ", channels, ", ", height, ", ", width);
  TORCH_CHECK(
      std::isfinite(spatial_scale) && spatial_scale > 0,
      "ovvision::_roi_align_backward: `spatial_scale` must be a positive finite number, got ",
      spatial_scale);
  TORCH_CHECK(
      rois.size(0) == 0 || (height > 0 && width > 0),
      "ovvision::_roi_align_backward: empty spatial size (", height, ", ", width,
      ") with non-empty `rois`");
}

bool is_channels_last(const at::Tensor& t) {
  return t.dim() == 4 && !t.is_contiguous() && t.is_contiguous(at::MemoryFormat::ChannelsLast);
}

}  // namespace ovvision
