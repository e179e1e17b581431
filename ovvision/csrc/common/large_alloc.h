// Allocation of large kernel outputs.
#pragma once

#include <ATen/core/Tensor.h>

namespace ovvision {

// Uninitialised tensor like at::empty. Outputs of 32 MiB and more are placed in 2 MiB-aligned
// memory advised for transparent huge pages (Linux), which cuts the page-fault cost of touching
// a fresh buffer by two orders of magnitude; smaller ones come from the default allocator.
at::Tensor empty_large(
    at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat memory_format);

// Like empty_large, filled with zeros by all threads (first touch happens in parallel).
at::Tensor zeros_large(
    at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat memory_format);

}  // namespace ovvision
