#include "common/large_alloc.h"

#include "common/parallel.h"

#include <ATen/ops/empty.h>
#include <ATen/ops/from_blob.h>
#include <c10/core/MemoryFormat.h>

#include <cstdlib>
#include <cstring>
#include <deque>
#include <mutex>
#include <string>
#include <vector>

#if defined(__linux__)
#include <sys/mman.h>
#endif

namespace ovvision {
namespace {

constexpr size_t kLargeBytes = size_t(32) << 20;
constexpr size_t kHugePage = size_t(2) << 20;
constexpr int64_t kDefaultCacheMiB = 1024;

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

int64_t initial_limit() {
  const char* env = std::getenv("OVVISION_OUTPUT_CACHE_MB");
  if (env == nullptr || *env == '\0') {
    return kDefaultCacheMiB << 20;
  }
  char* end = nullptr;
  const long long mib = std::strtoll(env, &end, 10);
  TORCH_CHECK(
      end != env && *end == '\0' && mib >= 0,
      "OVVISION_OUTPUT_CACHE_MB must be a non-negative integer (MiB), got '", env, "'");
  return static_cast<int64_t>(mib) << 20;
}

// Freed huge-page blocks, oldest first. A block is reused by a request of at least half its
// length, so a small output never pins a much larger block.
class OutputCache {
 public:
  OutputCache() : limit_(initial_limit()) {}

  // A cached block of at least `length` bytes (its length in `block_length`), or nullptr.
  void* take(size_t length, size_t& block_length) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto best = blocks_.end();
    for (auto it = blocks_.begin(); it != blocks_.end(); ++it) {
      if (it->length >= length && it->length / 2 <= length &&
          (best == blocks_.end() || it->length < best->length)) {
        best = it;
      }
    }
    if (best == blocks_.end()) {
      ++misses_;
      return nullptr;
    }
    void* data = best->data;
    block_length = best->length;
    cached_ -= static_cast<int64_t>(best->length);
    blocks_.erase(best);
    ++hits_;
    return data;
  }

  void give_back(void* data, size_t length) {
    std::vector<void*> to_free;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (static_cast<int64_t>(length) > limit_) {
        to_free.push_back(data);
      } else {
        blocks_.push_back({data, length});
        cached_ += static_cast<int64_t>(length);
        trim_locked(limit_, to_free);
      }
    }
    for (void* p : to_free) {
      std::free(p);
    }
  }

  int64_t set_limit(int64_t bytes) {
    TORCH_CHECK(bytes >= 0, "the output cache limit must be >= 0 bytes, got ", bytes);
    std::vector<void*> to_free;
    int64_t previous;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      previous = limit_;
      limit_ = bytes;
      trim_locked(limit_, to_free);
    }
    for (void* p : to_free) {
      std::free(p);
    }
    return previous;
  }

  int64_t release() {
    std::vector<void*> to_free;
    int64_t released;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      released = cached_;
      trim_locked(0, to_free);
    }
    for (void* p : to_free) {
      std::free(p);
    }
    return released;
  }

  OutputCacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {cached_, limit_, hits_, misses_};
  }

 private:
  struct Block {
    void* data;
    size_t length;
  };

  void trim_locked(int64_t limit, std::vector<void*>& to_free) {
    while (cached_ > limit && !blocks_.empty()) {
      to_free.push_back(blocks_.front().data);
      cached_ -= static_cast<int64_t>(blocks_.front().length);
      blocks_.pop_front();
    }
  }

  std::mutex mutex_;
  std::deque<Block> blocks_;
  int64_t cached_ = 0;
  int64_t limit_;
  int64_t hits_ = 0;
  int64_t misses_ = 0;
};

// Never destroyed: tensors may be freed by other static destructors at exit.
OutputCache& output_cache() {
  static OutputCache* cache = new OutputCache();
  return *cache;
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
      size_t block_length = length;
      void* data = output_cache().take(length, block_length);
      if (data == nullptr) {
        if (posix_memalign(&data, kHugePage, length) == 0) {
          madvise(data, length, MADV_HUGEPAGE);
        } else {
          data = nullptr;
        }
      }
      if (data != nullptr) {
        return at::from_blob(
            data, sizes, dense_strides(sizes, memory_format),
            [block_length](void* p) { output_cache().give_back(p, block_length); }, options);
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

OutputCacheStats output_cache_stats() {
  return output_cache().stats();
}

int64_t set_output_cache_limit(int64_t bytes) {
  return output_cache().set_limit(bytes);
}

int64_t release_output_cache() {
  return output_cache().release();
}

}  // namespace ovvision
