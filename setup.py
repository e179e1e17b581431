"""Install ovvision; build the optional C++/CUDA extension ``ovvision._C`` when kernels exist.

The extension is built as a C++ extension by default, and as a CUDA extension when a GPU is
visible or ``FORCE_CUDA=1`` is set (``CUDA_HOME`` must point at the toolkit). Without any kernel
sources, or with ``OVVISION_NO_EXT=1``, the install is pure Python and every op falls back to its
PyTorch reference.
"""

import glob
import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))
CSRC = os.path.join("ovvision", "csrc")


def _version() -> str:
    with open(os.path.join(HERE, "ovvision", "__init__.py"), encoding="utf-8") as f:
        for line in f:
            if line.startswith("__version__"):
                return line.split("=")[1].strip().strip('"')
    raise RuntimeError("ovvision/__init__.py has no __version__")


def _extensions() -> tuple[list, dict]:
    """Return (ext_modules, cmdclass) for ``ovvision._C``; empty when nothing is to be built."""
    cpp = sorted(glob.glob(os.path.join(CSRC, "**", "*.cpp"), recursive=True))
    if not cpp or os.environ.get("OVVISION_NO_EXT", "0") == "1":
        return [], {}
    import torch
    from torch.utils.cpp_extension import BuildExtension, CppExtension, CUDAExtension

    cuda = sorted(glob.glob(os.path.join(CSRC, "**", "*.cu"), recursive=True))
    use_cuda = bool(cuda) and (
        torch.cuda.is_available() or os.environ.get("FORCE_CUDA", "0") == "1"
    )
    # torch >= 2.10 headers need C++20.
    cxx_flags = ["-O3", "-fopenmp", "-std=c++20"]
    define_macros = []
    if use_cuda:
        define_macros.append(("WITH_CUDA", None))
        ext = CUDAExtension(
            "ovvision._C",
            sources=cpp + cuda,
            include_dirs=[os.path.join(HERE, CSRC)],
            define_macros=define_macros,
            extra_compile_args={"cxx": cxx_flags, "nvcc": ["-O3", "--expt-relaxed-constexpr"]},
            extra_link_args=["-fopenmp"],
        )
    else:
        ext = CppExtension(
            "ovvision._C",
            sources=cpp,
            include_dirs=[os.path.join(HERE, CSRC)],
            define_macros=define_macros,
            extra_compile_args={"cxx": cxx_flags},
            extra_link_args=["-fopenmp"],
        )
    return [ext], {"build_ext": BuildExtension.with_options(no_python_abi_suffix=False)}


ext_modules, cmdclass = _extensions()

setup(
    name="ovvision",
    version=_version(),
    description="Open-vocabulary detection, segmentation and grounding with CLIP region heads",
    packages=find_packages(exclude=("tests", "tests.*", "tools", "configs", "datasets")),
    package_data={"ovvision": ["model_configs/*.json"]},
    python_requires=">=3.10",
    # tools/autolabel.py --ray: Ray Data (pyarrow comes with it) for labelling on a cluster
    extras_require={"ray": ["ray[data]"]},
    ext_modules=ext_modules,
    cmdclass=cmdclass,
)
