// Allocation of large kernel outputs.
#pragma once

#include <ATen/core/Tensor.h>

namespace ovvision {

// Uninitialised tensor like at::empty. Outputs of 32 MiB and more are mapped fresh from the
// kernel (Linux), 2 MiB-aligned and advised for transparent huge pages, which cuts the
// page-fault cost of touching them by two orders of magnitude; smaller ones come from the
// default allocator.
at::Tensor empty_large(
    at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat memory_format);

// empty_large that also says whether the memory is known to hold zeros (a freshly mapped
// block: the kernel zero-fills it on first touch), so a kernel writing a sparse output may
// skip its zeros; memory from the default allocator may hold old data.
at::Tensor empty_large(
    at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat memory_format,
    bool& known_zero);

// Like empty_large, filled with zeros: freshly mapped blocks already are, others are zeroed by
// all threads.
at::Tensor zeros_large(
    at::IntArrayRef sizes, const at::TensorOptions& options, at::MemoryFormat memory_format);

}  // namespace ovvision
