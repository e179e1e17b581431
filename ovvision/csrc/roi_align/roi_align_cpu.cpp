// CPU entry points of roi_align: layout and dtype handling, the choice between the planar and
// the channel-blocked kernels, and the CPU registrations.
#include <ATen/Dispatch.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <torch/library.h>

#include <array>

#include "common/large_alloc.h"
#include "common/parallel.h"
#include "roi_align/roi_align.h"
#include "roi_align/roi_align_cpu.h"

namespace ovvision {

template <typename T>
std::vector<RoiTaps<T>> build_roi_taps(const T* rois, T spatial_scale, const RoiAlignShape& s) {
  std::vector<RoiTaps<T>> taps(s.num_rois);
  const int64_t work = s.num_rois * (s.pooled_h + s.pooled_w) * 64;
  parallel_workers(s.num_rois, 16, work, [&](ChunkQueue& queue) {
    for (int64_t begin, end; queue.pop(begin, end);) {
      for (int64_t k = begin; k < end; ++k) {
        const RoiGeometry<T> g = roi_geometry(
            rois + 5 * k, spatial_scale, s.aligned, s.pooled_h, s.pooled_w, s.sampling_ratio);
        taps[k].build(g, s.pooled_h, s.pooled_w, s.height, s.width);
      }
    }
  });
  return taps;
}

namespace {

// The planar kernels cost about one scalar gather (or scatter) per tap and channel; the blocked
// ones a fixed pass over the map (tiles of whole channel blocks), after which taps are nearly
// free. Measured on the benchmark map (AVX-512, 256 channels), a tap-channel costs the planar
// kernels about six times what a pixel-channel costs the blocked ones, which therefore win
// from about 10 ROIs of 7 x 7 there.
bool prefer_blocked(const RoiAlignShape& s) {
  if (s.channels < 4) {
    return false;
  }
  const int64_t grid = s.sampling_ratio > 0 ? s.sampling_ratio : 2;
  const int64_t taps = s.num_rois * s.pooled_h * s.pooled_w * (grid + 1) * (grid + 1);
  const int64_t padded_channels = (s.channels + 15) / 16 * 16;  // the blocked kernels' width
  return 6 * taps * s.channels >= s.batch * s.height * s.width * padded_channels;
}

at::ScalarType compute_type(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

// rois in the compute type, contiguous, with every batch index checked against the batch size.
at::Tensor checked_rois(const at::Tensor& rois, at::ScalarType type, int64_t batch_size) {
  at::Tensor r = rois.to(type).contiguous();
  AT_DISPATCH_FLOATING_TYPES(type, "ovvision::roi_align", [&] {
    const scalar_t* p = r.data_ptr<scalar_t>();
    for (int64_t k = 0; k < r.size(0); ++k) {
      const scalar_t b = p[5 * k];
      TORCH_CHECK(
          b >= 0 && b < batch_size, "ovvision::roi_align: `rois`[", k, ", 0] = ", b,
          " is not a batch index of `input` (batch size ", batch_size, ")");
    }
  });
  return r;
}

at::Tensor roi_align_forward_cpu(
    const at::Tensor& input,
    const at::Tensor& rois,
    double spatial_scale,
    int64_t pooled_height,
    int64_t pooled_width,
    int64_t sampling_ratio,
    bool aligned) {
  check_roi_align_args(input, rois, spatial_scale, pooled_height, pooled_width);
  const RoiAlignShape shape{
      input.size(0), input.size(1), input.size(2),  input.size(3), rois.size(0),
      pooled_height, pooled_width,  sampling_ratio, aligned};
  const bool output_cl = is_channels_last(input);
  const std::array<int64_t, 4> sizes{shape.num_rois, shape.channels, pooled_height, pooled_width};
  at::Tensor out = empty_large(sizes, input.options(), memory_format_of(output_cl));
  if (out.numel() == 0) {
    return out;
  }
  const bool blocked = prefer_blocked(shape);
  const at::Tensor in = input.contiguous(memory_format_of(output_cl));
  const at::ScalarType type = compute_type(input.scalar_type());
  const at::Tensor r = checked_rois(rois, type, shape.batch);
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "roi_align", [&] {
    using T = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const std::vector<RoiTaps<T>> taps =
        build_roi_taps(r.data_ptr<T>(), static_cast<T>(spatial_scale), shape);
    const RoiAlignForwardArgs<scalar_t> args{
        in.data_ptr<scalar_t>(), output_cl, out.data_ptr<scalar_t>(), output_cl};
    if (blocked) {
      roi_align_forward_blocked(args, taps, shape);
    } else {
      roi_align_forward_planar(args, taps, shape);
    }
  });
  return out;
}

// Planar scatter into a zeroed buffer of the compute type, then one conversion if needed.
template <typename T>
at::Tensor backward_planar(const at::Tensor& grad, const at::Tensor& rois, double spatial_scale,
                           const RoiAlignShape& shape, at::IntArrayRef sizes) {
  const at::Tensor g = grad.to(c10::CppTypeToScalarType<T>::value);
  at::Tensor grad_input =
      zeros_large(sizes, grad.options().dtype(g.scalar_type()), at::MemoryFormat::Contiguous);
  const std::vector<RoiTaps<T>> taps =
      build_roi_taps(rois.data_ptr<T>(), static_cast<T>(spatial_scale), shape);
  const RoiAlignBackwardArgs<T> args{
      g.data_ptr<T>(),
      {g.stride(0), g.stride(1), g.stride(2), g.stride(3)},
      grad_input.data_ptr<T>(),
      false};
  roi_align_backward_planar(args, taps, shape);
  return grad_input.to(grad.scalar_type());
}

at::Tensor roi_align_backward_cpu(
    const at::Tensor& grad,
    const at::Tensor& rois,
    double spatial_scale,
    int64_t pooled_height,
    int64_t pooled_width,
    int64_t batch_size,
    int64_t channels,
    int64_t height,
    int64_t width,
    int64_t sampling_ratio,
    bool aligned) {
  check_roi_align_backward_args(
      grad, rois, spatial_scale, pooled_height, pooled_width, batch_size, channels, height,
      width);
  const RoiAlignShape shape{
      batch_size,    channels,     height,         width,  rois.size(0),
      pooled_height, pooled_width, sampling_ratio, aligned};
  const bool output_cl = is_channels_last(grad);
  const std::array<int64_t, 4> sizes{batch_size, channels, height, width};
  if (shape.num_rois == 0 || channels == 0 || batch_size * height * width == 0) {
    return at::zeros(sizes, grad.options().memory_format(memory_format_of(output_cl)));
  }
  const at::ScalarType type = compute_type(grad.scalar_type());
  const at::Tensor r = checked_rois(rois, type, batch_size);
  if (!output_cl && !prefer_blocked(shape)) {
    return type == at::kDouble ? backward_planar<double>(grad, r, spatial_scale, shape, sizes)
                               : backward_planar<float>(grad, r, spatial_scale, shape, sizes);
  }
  at::Tensor grad_input = empty_large(sizes, grad.options(), memory_format_of(output_cl));
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "roi_align", [&] {
    using T = std::conditional_t<std::is_same_v<scalar_t, double>, double, float>;
    const std::vector<RoiTaps<T>> taps =
        build_roi_taps(r.data_ptr<T>(), static_cast<T>(spatial_scale), shape);
    const RoiAlignBackwardArgs<scalar_t> args{
        grad.data_ptr<scalar_t>(),
        {grad.stride(0), grad.stride(1), grad.stride(2), grad.stride(3)},
        grad_input.data_ptr<scalar_t>(),
        output_cl};
    roi_align_backward_blocked(args, taps, shape);
  });
  return grad_input;
}

}  // namespace

TORCH_LIBRARY_IMPL(ovvision, CPU, m) {
  m.impl("roi_align", TORCH_FN(roi_align_forward_cpu));
  m.impl("_roi_align_backward", TORCH_FN(roi_align_backward_cpu));
}

}  // namespace ovvision
