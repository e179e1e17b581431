// Dynamic work sharing on top of at::parallel_for.
//
// at::parallel_for splits a range statically, one slice per thread, so one thread that is slow
// (descheduled on a shared machine, or given the larger ROIs) holds all the others up at the
// end. Here each worker pulls the next chunk from a shared counter instead; every output is
// still computed by exactly one worker in a fixed order, so results do not depend on the
// thread count or on the schedule.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace ovvision {

// Jobs with fewer multiply-adds (or copied elements) than this run on the calling thread:
// waking the pool costs more than they do.
constexpr int64_t kMinParallelWork = int64_t(1) << 17;

// Hands out [begin, end) chunks of [0, size) to whichever worker asks next.
class ChunkQueue {
 public:
  ChunkQueue(int64_t size, int64_t chunk) : size_(size), chunk_(std::max<int64_t>(chunk, 1)) {}

  // Next chunk, or false when the range is exhausted.
  bool pop(int64_t& begin, int64_t& end) {
    begin = next_.fetch_add(chunk_, std::memory_order_relaxed);
    end = std::min(begin + chunk_, size_);
    return begin < size_;
  }

  int64_t chunks() const {
    return (size_ + chunk_ - 1) / chunk_;
  }

 private:
  std::atomic<int64_t> next_{0};
  const int64_t size_;
  const int64_t chunk_;
};

// Runs worker(queue) on up to at::get_num_threads() threads; each call holds its own scratch
// state and pops chunks until the queue is empty. `work` is the whole job's size (see
// kMinParallelWork).
template <typename Worker>
void parallel_workers(int64_t size, int64_t chunk, int64_t work, const Worker& worker) {
  ChunkQueue queue(size, chunk);
  const int64_t threads = std::min<int64_t>(at::get_num_threads(), queue.chunks());
  if (threads <= 1 || work < kMinParallelWork || at::in_parallel_region()) {
    worker(queue);
    return;
  }
  at::parallel_for(0, threads, 1, [&](int64_t, int64_t) { worker(queue); });
}

}  // namespace ovvision
