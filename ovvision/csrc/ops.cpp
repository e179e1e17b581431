// Schemas of every operator in the `ovvision` namespace, declared once. Kernels are registered per
// dispatch key next to their implementation (roi_align/, paste_masks/); the fake (meta) kernels
// used by torch.compile live in ovvision/ops/_extension.py.
#include <Python.h>
#include <torch/library.h>

#include <string>

#include "common/cpu_isa.h"

namespace {

std::string cpu_isa_string() {
  return ovvision::cpu_isa_name(ovvision::cpu_isa());
}

}  // namespace

TORCH_LIBRARY(ovvision, m) {
  m.def(
      "roi_align(Tensor input, Tensor rois, float spatial_scale, SymInt pooled_height, "
      "SymInt pooled_width, int sampling_ratio, bool aligned) -> Tensor");
  m.def(
      "_roi_align_backward(Tensor grad, Tensor rois, float spatial_scale, SymInt pooled_height, "
      "SymInt pooled_width, SymInt batch_size, SymInt channels, SymInt height, SymInt width, "
      "int sampling_ratio, bool aligned) -> Tensor");
  m.def(
      "paste_masks(Tensor masks, Tensor boxes, SymInt height, SymInt width, int padding=1, "
      "float? threshold=None, bool exact_box=False) -> Tensor");
  // The vector ISA the CPU kernels run with (avx512, avx2 or base), for benchmarks and tests.
  m.def("_cpu_isa() -> str", &cpu_isa_string);
}

// `import ovvision._C` only has to run the static registrations above; the module is empty.
extern "C" PyMODINIT_FUNC PyInit__C(void) {
  static struct PyModuleDef module_def = {
      PyModuleDef_HEAD_INIT, "_C", "ovvision C++/CUDA operators (see torch.ops.ovvision)", -1,
      nullptr};
  return PyModule_Create(&module_def);
}
