// Autograd kernels of roi_align. The backward op is linear in `grad`, so its own backward is
// roi_align again, which makes double backward (gradgradcheck) work.
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/autograd.h>
#include <torch/library.h>

namespace ovvision {
namespace {

using torch::autograd::AutogradContext;
using torch::autograd::Variable;
using torch::autograd::variable_list;

at::Tensor call_roi_align(
    const at::Tensor& input,
    const at::Tensor& rois,
    double spatial_scale,
    const c10::SymInt& pooled_height,
    const c10::SymInt& pooled_width,
    int64_t sampling_ratio,
    bool aligned) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("ovvision::roi_align", "")
                       .typed<at::Tensor(
                           const at::Tensor&, const at::Tensor&, double, c10::SymInt,
                           c10::SymInt, int64_t, bool)>();
  return op.call(
      input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned);
}

at::Tensor call_roi_align_backward(
    const at::Tensor& grad,
    const at::Tensor& rois,
    double spatial_scale,
    const c10::SymInt& pooled_height,
    const c10::SymInt& pooled_width,
    c10::SymIntArrayRef input_shape,
    int64_t sampling_ratio,
    bool aligned) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("ovvision::_roi_align_backward", "")
                       .typed<at::Tensor(
                           const at::Tensor&, const at::Tensor&, double, c10::SymInt,
                           c10::SymInt, c10::SymInt, c10::SymInt, c10::SymInt, c10::SymInt,
                           int64_t, bool)>();
  return op.call(
      grad, rois, spatial_scale, pooled_height, pooled_width, input_shape[0], input_shape[1],
      input_shape[2], input_shape[3], sampling_ratio, aligned);
}

// The arguments both functions keep for their backward pass.
void save_args(
    AutogradContext* ctx,
    const at::Tensor& rois,
    double spatial_scale,
    const c10::SymInt& pooled_height,
    const c10::SymInt& pooled_width,
    int64_t sampling_ratio,
    bool aligned) {
  ctx->save_for_backward({rois});
  ctx->saved_data["spatial_scale"] = spatial_scale;
  ctx->saved_data["pooled_height"] = pooled_height;
  ctx->saved_data["pooled_width"] = pooled_width;
  ctx->saved_data["sampling_ratio"] = sampling_ratio;
  ctx->saved_data["aligned"] = aligned;
}

class ROIAlignFunction : public torch::autograd::Function<ROIAlignFunction> {
 public:
  static variable_list forward(
      AutogradContext* ctx,
      const Variable& input,
      const Variable& rois,
      double spatial_scale,
      const c10::SymInt& pooled_height,
      const c10::SymInt& pooled_width,
      int64_t sampling_ratio,
      bool aligned) {
    save_args(ctx, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned);
    ctx->saved_data["input_shape"] = input.sym_sizes();
    at::AutoDispatchBelowADInplaceOrView guard;
    return {call_roi_align(
        input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)};
  }

  static variable_list backward(AutogradContext* ctx, const variable_list& grad_output) {
    const Variable rois = ctx->get_saved_variables()[0];
    const std::vector<c10::SymInt> shape = ctx->saved_data["input_shape"].toSymIntVector();
    const at::Tensor grad_input = call_roi_align_backward(
        grad_output[0], rois, ctx->saved_data["spatial_scale"].toDouble(),
        ctx->saved_data["pooled_height"].toSymInt(), ctx->saved_data["pooled_width"].toSymInt(),
        shape, ctx->saved_data["sampling_ratio"].toInt(), ctx->saved_data["aligned"].toBool());
    return {grad_input, Variable(), Variable(), Variable(), Variable(), Variable(), Variable()};
  }
};

class ROIAlignBackwardFunction : public torch::autograd::Function<ROIAlignBackwardFunction> {
 public:
  static variable_list forward(
      AutogradContext* ctx,
      const Variable& grad,
      const Variable& rois,
      double spatial_scale,
      const c10::SymInt& pooled_height,
      const c10::SymInt& pooled_width,
      const std::vector<c10::SymInt>& input_shape,
      int64_t sampling_ratio,
      bool aligned) {
    save_args(ctx, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned);
    at::AutoDispatchBelowADInplaceOrView guard;
    return {call_roi_align_backward(
        grad, rois, spatial_scale, pooled_height, pooled_width, input_shape, sampling_ratio,
        aligned)};
  }

  static variable_list backward(AutogradContext* ctx, const variable_list& grad_output) {
    const Variable rois = ctx->get_saved_variables()[0];
    const at::Tensor grad_grad = call_roi_align(
        grad_output[0], rois, ctx->saved_data["spatial_scale"].toDouble(),
        ctx->saved_data["pooled_height"].toSymInt(), ctx->saved_data["pooled_width"].toSymInt(),
        ctx->saved_data["sampling_ratio"].toInt(), ctx->saved_data["aligned"].toBool());
    return {grad_grad, Variable(), Variable(), Variable(),
            Variable(),  Variable(), Variable(), Variable()};
  }
};

at::Tensor roi_align_autograd(
    const at::Tensor& input,
    const at::Tensor& rois,
    double spatial_scale,
    c10::SymInt pooled_height,
    c10::SymInt pooled_width,
    int64_t sampling_ratio,
    bool aligned) {
  return ROIAlignFunction::apply(
      input, rois, spatial_scale, pooled_height, pooled_width, sampling_ratio, aligned)[0];
}

at::Tensor roi_align_backward_autograd(
    const at::Tensor& grad,
    const at::Tensor& rois,
    double spatial_scale,
    c10::SymInt pooled_height,
    c10::SymInt pooled_width,
    c10::SymInt batch_size,
    c10::SymInt channels,
    c10::SymInt height,
    c10::SymInt width,
    int64_t sampling_ratio,
    bool aligned) {
  const std::vector<c10::SymInt> input_shape{batch_size, channels, height, width};
  return ROIAlignBackwardFunction::apply(
      grad, rois, spatial_scale, pooled_height, pooled_width, input_shape, sampling_ratio,
      aligned)[0];
}

}  // namespace

TORCH_LIBRARY_IMPL(ovvision, Autograd, m) {
  m.impl("roi_align", TORCH_FN(roi_align_autograd));
  m.impl("_roi_align_backward", TORCH_FN(roi_align_backward_autograd));
}

}  // namespace ovvision
