"""Runs every op on saved inputs in a fresh process (see test_extension.py).

Usage: python -m tests.ops.run_ops INPUTS OUTPUTS [--without-extension | --broken-extension]

With --without-extension, ``ovvision._C`` is made unimportable first, as in an install where
the extension was never built; with --broken-extension it exists but fails to load. The
environment variable OVVISION_CPU_ISA picks the kernel copy.
"""

from __future__ import annotations

import sys

import torch


def run_ops(data: dict) -> dict:
    """Forward and input gradient of roi_align per map, paste_masks, MultiScaleROIAlign."""
    from ovvision import ops

    results = {"has_ops": ops.has_ops(), "cpu_isa": ops.cpu_isa()}
    for name, x in data["maps"].items():
        x = x.detach().requires_grad_()
        out = ops.roi_align(x, data["rois"], (3, 4), 0.5, 2, True)
        (grad,) = torch.autograd.grad(out, x, data["grads"][name])
        results[name] = (out, grad)
    results["paste"] = ops.paste_masks(data["masks"], data["boxes"], (20, 30))
    pooler = ops.MultiScaleROIAlign(["a", "b"], 3, 2, canonical_scale=8)
    results["pool"] = pooler(data["features"], data["box_list"], [(32, 48), (30, 40)])
    return results


class _BrokenExtension:
    """Meta-path finder under which ovvision._C exists but fails to load (an ABI mismatch)."""

    @staticmethod
    def find_spec(name: str, path: object = None, target: object = None) -> None:
        if name == "ovvision._C":
            raise ImportError("ovvision/_C.so: undefined symbol: _ZN3c10 (simulated)")


if __name__ == "__main__":
    if "--without-extension" in sys.argv:
        sys.modules["ovvision._C"] = None  # import of ovvision._C now fails as if never built
    if "--broken-extension" in sys.argv:
        sys.meta_path.insert(0, _BrokenExtension())
    torch.save(run_ops(torch.load(sys.argv[1])), sys.argv[2])
