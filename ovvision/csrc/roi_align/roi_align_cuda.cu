// roi_align on CUDA: one thread per output (forward) or per output gradient (backward, with
// atomic adds into a float/double buffer). Sums are kept in at::opmath_type (float for
// half/bfloat16); any input strides are read as they are, and for channels-last tensors the
// thread index runs fastest over channels so that neighbouring threads read neighbouring
// memory.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/zeros.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>

#include "roi_align/roi_align.h"

namespace ovvision {
namespace {

constexpr int kThreads = 256;

int64_t blocks_for(int64_t n) {
  return std::min<int64_t>((n + kThreads - 1) / kThreads, int64_t(1) << 16);
}

struct Dims {
  int64_t batch, channels, height, width, pooled_h, pooled_w;
  int64_t sampling_ratio;
  bool aligned;
  bool channels_last;  // thread index order (k, ph, pw, c) instead of (k, c, ph, pw)
};

// Element index -> (k, c, ph, pw).
__device__ inline void unravel(int64_t i, const Dims& d, int64_t& k, int64_t& c, int64_t& ph,
                               int64_t& pw) {
  if (d.channels_last) {
    c = i % d.channels;
    i /= d.channels;
    pw = i % d.pooled_w;
    i /= d.pooled_w;
    ph = i % d.pooled_h;
    k = i / d.pooled_h;
  } else {
    pw = i % d.pooled_w;
    i /= d.pooled_w;
    ph = i % d.pooled_h;
    i /= d.pooled_h;
    c = i % d.channels;
    k = i / d.channels;
  }
}

// Geometry of one ROI bin, as in torchvision (half-pixel offset when aligned, ROIs at least
// 1x1 when not, adaptive grid = ceil(bin size)).
template <typename A>
struct Bin {
  A y0, x0, bin_h, bin_w;
  int64_t grid_h, grid_w;
  A count;
};

// ceil(bin size) samples; none for empty, negative or non-finite bins.
template <typename A>
__device__ inline int64_t adaptive_grid(A bin_size) {
  return (isfinite(bin_size) && bin_size > 0) ? static_cast<int64_t>(ceil(bin_size)) : 0;
}

template <typename A>
__device__ inline Bin<A> bin_of(const A* roi, A spatial_scale, const Dims& d) {
  Bin<A> b;
  const A offset = d.aligned ? A(0.5) : A(0);
  b.x0 = roi[1] * spatial_scale - offset;
  b.y0 = roi[2] * spatial_scale - offset;
  A roi_w = roi[3] * spatial_scale - offset - b.x0;
  A roi_h = roi[4] * spatial_scale - offset - b.y0;
  if (!d.aligned) {
    roi_w = max(roi_w, A(1));
    roi_h = max(roi_h, A(1));
  }
  b.bin_h = roi_h / static_cast<A>(d.pooled_h);
  b.bin_w = roi_w / static_cast<A>(d.pooled_w);
  b.grid_h = d.sampling_ratio > 0 ? d.sampling_ratio : adaptive_grid(b.bin_h);
  b.grid_w = d.sampling_ratio > 0 ? d.sampling_ratio : adaptive_grid(b.bin_w);
  const int64_t samples = b.grid_h * b.grid_w;
  b.count = static_cast<A>(samples > 0 ? samples : 1);
  return b;
}

// Bilinear taps of one sample along one axis; false if the sample lies outside [-1, size].
template <typename A>
__device__ inline bool axis_taps(A v, int64_t size, int64_t& lo, int64_t& hi, A& w_lo, A& w_hi) {
  if (!(v >= A(-1) && v <= static_cast<A>(size))) {
    return false;
  }
  v = max(v, A(0));
  lo = static_cast<int64_t>(v);
  hi = lo + 1;
  if (lo >= size - 1) {
    lo = hi = size - 1;
    v = static_cast<A>(lo);
  }
  w_hi = v - static_cast<A>(lo);
  w_lo = A(1) - w_hi;
  return true;
}

template <typename A>
__device__ inline A sample_y(const Bin<A>& b, int64_t ph, int64_t iy) {
  return b.y0 + static_cast<A>(ph) * b.bin_h +
         (static_cast<A>(iy) + A(0.5)) * b.bin_h / static_cast<A>(b.grid_h);
}

template <typename A>
__device__ inline A sample_x(const Bin<A>& b, int64_t pw, int64_t ix) {
  return b.x0 + static_cast<A>(pw) * b.bin_w +
         (static_cast<A>(ix) + A(0.5)) * b.bin_w / static_cast<A>(b.grid_w);
}

template <typename scalar_t, typename A>
__global__ void roi_align_forward_kernel(
    int64_t total, const scalar_t* __restrict__ input, int64_t sn, int64_t sc, int64_t sh,
    int64_t sw, const A* __restrict__ rois, A spatial_scale, Dims d,
    scalar_t* __restrict__ output) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t k, c, ph, pw;
    unravel(i, d, k, c, ph, pw);
    const A* roi = rois + 5 * k;
    const int64_t n = static_cast<int64_t>(roi[0]);
    A sum = 0;
    const Bin<A> b = bin_of(roi, spatial_scale, d);
    if (n >= 0 && n < d.batch) {
      const scalar_t* img = input + n * sn + c * sc;
      for (int64_t iy = 0; iy < b.grid_h; ++iy) {
        int64_t y0, y1;
        A wy0, wy1;
        if (!axis_taps(sample_y(b, ph, iy), d.height, y0, y1, wy0, wy1)) {
          continue;
        }
        for (int64_t ix = 0; ix < b.grid_w; ++ix) {
          int64_t x0, x1;
          A wx0, wx1;
          if (!axis_taps(sample_x(b, pw, ix), d.width, x0, x1, wx0, wx1)) {
            continue;
          }
          sum += wy0 * (wx0 * static_cast<A>(img[y0 * sh + x0 * sw]) +
                        wx1 * static_cast<A>(img[y0 * sh + x1 * sw])) +
                 wy1 * (wx0 * static_cast<A>(img[y1 * sh + x0 * sw]) +
                        wx1 * static_cast<A>(img[y1 * sh + x1 * sw]));
        }
      }
    }
    output[i] = static_cast<scalar_t>(sum / b.count);
  }
}

template <typename scalar_t, typename A>
__global__ void roi_align_backward_kernel(
    int64_t total, const scalar_t* __restrict__ grad, int64_t gk, int64_t gc, int64_t gh,
    int64_t gw, const A* __restrict__ rois, A spatial_scale, Dims d, A* __restrict__ grad_input,
    int64_t sn, int64_t sc, int64_t sh, int64_t sw) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    int64_t k, c, ph, pw;
    unravel(i, d, k, c, ph, pw);
    const A* roi = rois + 5 * k;
    const int64_t n = static_cast<int64_t>(roi[0]);
    if (n < 0 || n >= d.batch) {
      continue;
    }
    const Bin<A> b = bin_of(roi, spatial_scale, d);
    const A g = static_cast<A>(grad[k * gk + c * gc + ph * gh + pw * gw]) / b.count;
    A* img = grad_input + n * sn + c * sc;
    for (int64_t iy = 0; iy < b.grid_h; ++iy) {
      int64_t y0, y1;
      A wy0, wy1;
      if (!axis_taps(sample_y(b, ph, iy), d.height, y0, y1, wy0, wy1)) {
        continue;
      }
      for (int64_t ix = 0; ix < b.grid_w; ++ix) {
        int64_t x0, x1;
        A wx0, wx1;
        if (!axis_taps(sample_x(b, pw, ix), d.width, x0, x1, wx0, wx1)) {
          continue;
        }
        atomicAdd(img + y0 * sh + x0 * sw, g * wy0 * wx0);
        atomicAdd(img + y0 * sh + x1 * sw, g * wy0 * wx1);
        atomicAdd(img + y1 * sh + x0 * sw, g * wy1 * wx0);
        atomicAdd(img + y1 * sh + x1 * sw, g * wy1 * wx1);
      }
    }
  }
}

at::Tensor roi_align_forward_cuda(
    const at::Tensor& input, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
    int64_t pooled_width, int64_t sampling_ratio, bool aligned) {
  check_roi_align_args(input, rois, spatial_scale, pooled_height, pooled_width);
  const c10::cuda::CUDAGuard guard(input.device());
  const bool cl = is_channels_last(input);
  at::Tensor out = at::empty(
      {rois.size(0), input.size(1), pooled_height, pooled_width},
      input.options().memory_format(memory_format_of(cl)));
  const int64_t total = out.numel();
  if (total == 0) {
    return out;
  }
  const Dims d{input.size(0), input.size(1), input.size(2), input.size(3), pooled_height,
               pooled_width,  sampling_ratio, aligned,       cl};
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, input.scalar_type(), "roi_align", [&] {
    using A = at::opmath_type<scalar_t>;
    const at::Tensor r = rois.to(c10::CppTypeToScalarType<A>::value).contiguous();
    roi_align_forward_kernel<scalar_t, A><<<blocks_for(total), kThreads, 0, stream>>>(
        total, input.data_ptr<scalar_t>(), input.stride(0), input.stride(1), input.stride(2),
        input.stride(3), r.data_ptr<A>(), static_cast<A>(spatial_scale), d,
        out.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

at::Tensor roi_align_backward_cuda(
    const at::Tensor& grad, const at::Tensor& rois, double spatial_scale, int64_t pooled_height,
    int64_t pooled_width, int64_t batch_size, int64_t channels, int64_t height, int64_t width,
    int64_t sampling_ratio, bool aligned) {
  check_roi_align_backward_args(
      grad, rois, spatial_scale, pooled_height, pooled_width, batch_size, channels, height,
      width);
  const c10::cuda::CUDAGuard guard(grad.device());
  const bool cl = is_channels_last(grad);
  const at::ScalarType acc_type = at::toOpMathType(grad.scalar_type());
  at::Tensor grad_input = at::zeros(
      {batch_size, channels, height, width},
      grad.options().dtype(acc_type).memory_format(memory_format_of(cl)));
  const int64_t total = grad.numel();
  if (total > 0) {
    const Dims d{batch_size, channels, height, width, pooled_height, pooled_width,
                 sampling_ratio, aligned, cl};
    const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
    AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, grad.scalar_type(), "roi_align", [&] {
      using A = at::opmath_type<scalar_t>;
      const at::Tensor r = rois.to(acc_type).contiguous();
      roi_align_backward_kernel<scalar_t, A><<<blocks_for(total), kThreads, 0, stream>>>(
          total, grad.data_ptr<scalar_t>(), grad.stride(0), grad.stride(1), grad.stride(2),
          grad.stride(3), r.data_ptr<A>(), static_cast<A>(spatial_scale), d,
          grad_input.data_ptr<A>(), grad_input.stride(0), grad_input.stride(1),
          grad_input.stride(2), grad_input.stride(3));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
    });
  }
  return acc_type == grad.scalar_type() ? grad_input : grad_input.to(grad.scalar_type());
}

}  // namespace

TORCH_LIBRARY_IMPL(ovvision, CUDA, m) {
  m.impl("roi_align", TORCH_FN(roi_align_forward_cuda));
  m.impl("_roi_align_backward", TORCH_FN(roi_align_backward_cuda));
}

}  // namespace ovvision
