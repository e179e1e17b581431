// Shared pieces of the roi_align kernels (CPU and CUDA): argument checks and the layout rule.
#pragma once

#include <ATen/core/Tensor.h>

namespace ovvision {

// Raise (TORCH_CHECK, naming the argument) unless the forward arguments are valid.
void check_roi_align_args(
    const at::Tensor& input,
    const at::Tensor& rois,
    double spatial_scale,
    int64_t pooled_height,
    int64_t pooled_width);

// Raise unless the backward arguments are valid and consistent with each other.
void check_roi_align_backward_args(
    const at::Tensor& grad,
    const at::Tensor& rois,
    double spatial_scale,
    int64_t pooled_height,
    int64_t pooled_width,
    int64_t batch_size,
    int64_t channels,
    int64_t height,
    int64_t width);

// True when a 4-D tensor is laid out channels-last and not also plainly contiguous: outputs
// (and input gradients) follow this layout, so a channels-last network stays channels-last.
bool is_channels_last(const at::Tensor& t);

inline at::MemoryFormat memory_format_of(bool channels_last) {
  return channels_last ? at::MemoryFormat::ChannelsLast : at::MemoryFormat::Contiguous;
}

}  // namespace ovvision
