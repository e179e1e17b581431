// Allocation of large kernel outputs.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>

namespace ovvision {

// Uninitialised tensor like at::empty. Outputs of 32 MiB and more are placed in 2 MiB-aligned
// memory advised for transparent huge pages (Linux), which cuts the page-fault cost of touching
// a fresh buffer by two orders of magnitude; smaller ones come from the default allocator.
//
// Such buffers are also kept when their tensor is freed, up to a byte limit (OutputCache), and
// handed to the next large output that fits: a loop that pastes masks or pools ROIs per image
// then writes into memory that is already mapped, instead of paying the kernel for zeroing
// hundreds of megabytes of fresh pages on every call (glibc returns such blocks to the kernel
// on free, so every fresh block is faulted and zeroed again).
at::Tensor empty_large(
    at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat memory_format);

// Like empty_large, filled with zeros by all threads (first touch happens in parallel).
at::Tensor zeros_large(
    at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat memory_format);

// The cache of freed large output buffers. The limit starts at $OVVISION_OUTPUT_CACHE_MB MiB
// (default 1024; 0 turns the cache off).
struct OutputCacheStats {
  int64_t cached_bytes;  // freed buffers held for reuse
  int64_t limit_bytes;
  int64_t hits;          // allocations served from the cache since the process started
  int64_t misses;        // large allocations that took fresh memory
};

OutputCacheStats output_cache_stats();

// Sets the byte limit (frees the oldest buffers above it); returns the previous limit.
int64_t set_output_cache_limit(int64_t bytes);

// Frees every cached buffer; returns the bytes released.
int64_t release_output_cache();

}  // namespace ovvision
