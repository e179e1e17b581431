// paste_masks on CUDA: one thread per output pixel, computing the bilinear resize of its mask
// on the fly (zero outside the pasted box), in the truncated or the exact_box mode.
#include <ATen/Dispatch.h>
#include <ATen/OpMathType.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <ATen/ops/empty.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>

#include "paste_masks/paste_masks.h"

namespace ovvision {
namespace {

constexpr int kThreads = 256;

// Source taps of output pixel i when resizing `in` pixels to `out` (align_corners=False).
template <typename A>
__device__ inline void lerp_at(int64_t i, int64_t in, int64_t out, int64_t& i0, int64_t& i1,
                               A& w0, A& w1) {
  const A scale = static_cast<A>(in) / static_cast<A>(out);
  A src = scale * (static_cast<A>(i) + A(0.5)) - A(0.5);
  src = src < A(0) ? A(0) : src;
  i0 = static_cast<int64_t>(floor(src));
  i0 = i0 < in - 1 ? i0 : in - 1;
  i1 = i0 + (i0 < in - 1 ? 1 : 0);
  w1 = src - static_cast<A>(i0);
  w1 = w1 < A(0) ? A(0) : (w1 > A(1) ? A(1) : w1);
  w0 = A(1) - w1;
}

// Taps of pixel i in the exact_box mode, as mask indices in [-1, in] (outside the mask: zero);
// taps further out are clamped there, where they read zero too.
template <typename A>
__device__ inline void exact_lerp_at(int64_t i, A lo, A size, int64_t in, int64_t& i0,
                                     int64_t& i1, A& w0, A& w1) {
  A src = exact_box_source(i, lo, size, in);
  src = src < A(-2) ? A(-2) : (src > static_cast<A>(in + 1) ? static_cast<A>(in + 1) : src);
  const int64_t f = static_cast<int64_t>(floor(src));
  w1 = src - static_cast<A>(f);
  w0 = A(1) - w1;
  i0 = f < -1 ? -1 : (f > in ? in : f);
  i1 = f + 1 > in ? in : f + 1;
}

// Value of the zero-padded mask at (i, j).
template <typename scalar_t, typename A>
__device__ inline A padded_at(const scalar_t* mask, int64_t mh, int64_t mw, int64_t pad,
                              int64_t i, int64_t j) {
  i -= pad;
  j -= pad;
  return (i >= 0 && i < mh && j >= 0 && j < mw) ? static_cast<A>(mask[i * mw + j]) : A(0);
}

template <typename scalar_t, typename out_t>
__global__ void paste_masks_kernel(
    int64_t total, const scalar_t* __restrict__ masks, int64_t mh, int64_t mw, int64_t pad,
    const int64_t* __restrict__ boxes, const at::opmath_type<scalar_t>* __restrict__ exact_boxes,
    int64_t height, int64_t width, bool binary, at::opmath_type<scalar_t> threshold,
    out_t* __restrict__ out) {
  using A = at::opmath_type<scalar_t>;
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < total;
       i += int64_t(gridDim.x) * blockDim.x) {
    const int64_t x = i % width;
    const int64_t y = (i / width) % height;
    const int64_t n = i / (width * height);
    A v = 0;
    if (exact_boxes != nullptr) {
      const A* eb = exact_boxes + 4 * n;
      const A size_w = eb[2] - eb[0] > A(1e-6) ? eb[2] - eb[0] : A(1e-6);
      const A size_h = eb[3] - eb[1] > A(1e-6) ? eb[3] - eb[1] : A(1e-6);
      int64_t x0, x1, y0, y1;
      A wx0, wx1, wy0, wy1;
      exact_lerp_at(x, eb[0], size_w, mw, x0, x1, wx0, wx1);
      exact_lerp_at(y, eb[1], size_h, mh, y0, y1, wy0, wy1);
      const scalar_t* m = masks + n * mh * mw;
      // The mask index shifted by one: padded_at's zero border of one cell.
      v = wy0 * (wx0 * padded_at<scalar_t, A>(m, mh, mw, 1, y0 + 1, x0 + 1) +
                 wx1 * padded_at<scalar_t, A>(m, mh, mw, 1, y0 + 1, x1 + 1)) +
          wy1 * (wx0 * padded_at<scalar_t, A>(m, mh, mw, 1, y1 + 1, x0 + 1) +
                 wx1 * padded_at<scalar_t, A>(m, mh, mw, 1, y1 + 1, x1 + 1));
      out[i] = binary ? static_cast<out_t>(v >= threshold) : static_cast<out_t>(v);
      continue;
    }
    const int64_t* box = boxes + 4 * n;
    if (x >= box[0] && x <= box[2] && y >= box[1] && y <= box[3]) {
      const int64_t box_w = box[2] - box[0] + 1;
      const int64_t box_h = box[3] - box[1] + 1;
      int64_t x0, x1, y0, y1;
      A wx0, wx1, wy0, wy1;
      lerp_at(x - box[0], mw + 2 * pad, box_w, x0, x1, wx0, wx1);
      lerp_at(y - box[1], mh + 2 * pad, box_h, y0, y1, wy0, wy1);
      const scalar_t* m = masks + n * mh * mw;
      v = wy0 * (wx0 * padded_at<scalar_t, A>(m, mh, mw, pad, y0, x0) +
                 wx1 * padded_at<scalar_t, A>(m, mh, mw, pad, y0, x1)) +
          wy1 * (wx0 * padded_at<scalar_t, A>(m, mh, mw, pad, y1, x0) +
                 wx1 * padded_at<scalar_t, A>(m, mh, mw, pad, y1, x1));
    }
    out[i] = binary ? static_cast<out_t>(v >= threshold) : static_cast<out_t>(v);
  }
}

at::Tensor paste_masks_cuda(
    const at::Tensor& masks, const at::Tensor& boxes, int64_t height, int64_t width,
    int64_t padding, std::optional<double> threshold, bool exact_box) {
  check_paste_masks_args(masks, boxes, height, width, padding, threshold);
  const c10::cuda::CUDAGuard guard(masks.device());
  const at::ScalarType out_type = threshold.has_value() ? at::kBool : masks.scalar_type();
  at::Tensor out = at::empty({masks.size(0), 1, height, width}, masks.options().dtype(out_type));
  const int64_t total = out.numel();
  if (total == 0) {
    return out;
  }
  const at::Tensor m = masks.contiguous();
  const at::Tensor int_boxes =
      exact_box ? at::Tensor() : expand_paste_boxes(boxes, masks.size(3), padding);
  const int64_t blocks = std::min<int64_t>((total + kThreads - 1) / kThreads, int64_t(1) << 16);
  const cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(at::kHalf, at::kBFloat16, m.scalar_type(), "paste_masks", [&] {
    using A = at::opmath_type<scalar_t>;
    const A thr = static_cast<A>(threshold.value_or(0.0));
    const at::Tensor eb =
        exact_box ? boxes.to(c10::CppTypeToScalarType<A>::value).contiguous() : at::Tensor();
    const int64_t* ib = exact_box ? nullptr : int_boxes.data_ptr<int64_t>();
    const A* ebp = exact_box ? eb.data_ptr<A>() : nullptr;
    if (threshold.has_value()) {
      paste_masks_kernel<scalar_t, bool><<<blocks, kThreads, 0, stream>>>(
          total, m.data_ptr<scalar_t>(), m.size(2), m.size(3), padding,
          ib, ebp, height, width, true, thr, out.data_ptr<bool>());
    } else {
      paste_masks_kernel<scalar_t, scalar_t><<<blocks, kThreads, 0, stream>>>(
          total, m.data_ptr<scalar_t>(), m.size(2), m.size(3), padding,
          ib, ebp, height, width, false, thr, out.data_ptr<scalar_t>());
    }
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
  return out;
}

}  // namespace

TORCH_LIBRARY_IMPL(ovvision, CUDA, m) {
  m.impl("paste_masks", TORCH_FN(paste_masks_cuda));
}

}  // namespace ovvision
