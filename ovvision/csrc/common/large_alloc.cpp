#include "common/large_alloc.h"

#include "common/parallel.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <c10/core/MemoryFormat.h>

#include <cstdint>
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

#if defined(__linux__) && defined(MADV_HUGEPAGE)
// `length` bytes (a multiple of kHugePage) of fresh anonymous memory, 2 MiB-aligned and advised
// for transparent huge pages, or nullptr if the kernel refuses. The kernel zero-fills it.
void* map_block(size_t length) {
  const size_t padded = length + kHugePage;
  void* raw = mmap(nullptr, padded, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) {
    return nullptr;
  }
  // Keep the aligned [start, start + length) and give the unaligned ends back.
  const uintptr_t base = reinterpret_cast<uintptr_t>(raw);
  const uintptr_t start = (base + kHugePage - 1) / kHugePage * kHugePage;
  if (start > base) {
    munmap(raw, start - base);
  }
  const uintptr_t end = start + length;
  if (base + padded > end) {
    munmap(reinterpret_cast<void*>(end), base + padded - end);
  }
  void* data = reinterpret_cast<void*>(start);
  madvise(data, length, MADV_HUGEPAGE);
  return data;
}
#endif

}  // namespace

at::Tensor empty_large(
    at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat memory_format,
    bool& known_zero) {
  known_zero = false;
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (options.device().is_cpu()) {
    const size_t nbytes = static_cast<size_t>(c10::multiply_integers(sizes)) *
                          c10::elementSize(c10::typeMetaToScalarType(options.dtype()));
    if (nbytes >= kLargeBytes) {
      const size_t length = (nbytes + kHugePage - 1) / kHugePage * kHugePage;
      void* data = map_block(length);
      if (data != nullptr) {
        known_zero = true;
        return at::from_blob(
            data, sizes, dense_strides(sizes, memory_format),
            [length](void* p) { munmap(p, length); }, options);
      }
    }
  }
#endif
  return at::empty(sizes, options.memory_format(memory_format));
}

at::Tensor empty_large(
    at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat memory_format) {
  bool known_zero = false;
  return empty_large(sizes, options, memory_format, known_zero);
}

at::Tensor zeros_large(
    at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat memory_format) {
  bool known_zero = false;
  at::Tensor out = empty_large(sizes, options, memory_format, known_zero);
  if (known_zero) {
    return out;
  }
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
