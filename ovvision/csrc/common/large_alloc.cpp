#include "common/large_alloc.h"

#include "common/parallel.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <c10/core/MemoryFormat.h>

#include <cstdlib>
#include <cstring>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace ovvision {
namespace {

constexpr size_t kLargeBytes = size_t(32) << 20;
constexpr size_t kHugePage = size_t(2) << 20;

std::vector<int64_t> dense_strides(at::IntArrayRef sizes, at::MemoryFormat memory_format) {
  if (memory_format == at::MemoryFormat::ChannelsLast && sizes.size() == 4) {
    return c10::get_channels_last_strides_2d(sizes);
  }
  std::vector<int64_t> strides(sizes.size(), 1);
  for (int64_t d = static_cast<int64_t>(sizes.size()) - 2; d >= 0; --d) {
    strides[d] = strides[d + 1] * std::max<int64_t>(sizes[d + 1], 1);
  }
  return strides;
}

}  // namespace

at::Tensor empty_large(
    at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat memory_format) {
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (options.device().is_cpu()) {
    const size_t nbytes = static_cast<size_t>(c10::multiply_integers(sizes)) *
                          c10::elementSize(c10::typeMetaToScalarType(options.dtype()));
    if (nbytes >= kLargeBytes) {
      const size_t length = (nbytes + kHugePage - 1) / kHugePage * kHugePage;
      void* data = nullptr;
      if (posix_memalign(&data, kHugePage, length) == 0) {
        madvise(data, length, MADV_HUGEPAGE);
        return at::from_blob(
            data, sizes, dense_strides(sizes, memory_format), [](void* p) { std::free(p); },
            options);
      }
    }
  }
#endif
  return at::empty(sizes, options.memory_format(memory_format));
}

at::Tensor zeros_large(
    at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat memory_format) {
  at::Tensor out = empty_large(sizes, options, memory_format);
  char* data = static_cast<char*>(out.data_ptr());
  const int64_t nbytes = static_cast<int64_t>(out.nbytes());
  parallel_workers(nbytes, int64_t(1) << 20, nbytes, [&](ChunkQueue& queue) {
    for (int64_t begin, end; queue.pop(begin, end);) {
      std::memset(data + begin, 0, static_cast<size_t>(end - begin));
    }
  });
  return out;
}

}  // namespace ovvision
