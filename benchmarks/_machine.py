"""What a benchmark ran on: processor, instruction sets, threads and matrix-product rates.

Ratios against peers move a lot between machines of the same size (an AMD EPYC and an
Intel Xeon with two cores each gave 2-4x different float32 matrix-product rates through
MKL), so every benchmark prints this line and stores it with its figures.
"""

from __future__ import annotations

import os
import platform
import time
from typing import Any

import torch

from mixtorch.estep._products import onednn_log_prob_products, onednn_products


def processor() -> str:
    """The processor's model name (``/proc/cpuinfo`` on Linux, else ``platform``)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as lines:
            for line in lines:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def product_gflops(dtype: torch.dtype, onednn: bool, size: int = 2048, repeats: int = 5) -> float:
    """Dense ``size`` x ``size`` product rate (GFLOP/s) on the current threads, through
    ``torch.mm`` (MKL) or oneDNN's inner product (as mixtorch's float32 kernels use it)."""
    a = torch.randn(size, size, dtype=dtype)
    b = torch.randn(size, size, dtype=dtype)

    def multiply() -> Any:
        if onednn:
            return torch.ops.mkldnn._linear_pointwise(a, b.T, None, "none", [], "")
        return a @ b

    multiply()
    start = time.perf_counter()
    for _ in range(repeats):
        multiply()
    return 2 * size**3 / ((time.perf_counter() - start) / repeats) / 1e9


def describe() -> dict[str, Any]:
    """Processor, AVX-512 support, threads, torch version and float32 product rates."""
    flags = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as lines:
            flags = next((line for line in lines if line.startswith("flags")), "")
    except OSError:
        pass
    onednn = onednn_products(torch.float32, torch.device("cpu"))
    rates = {"mkl_float32": product_gflops(torch.float32, onednn=False)}
    if onednn:
        rates["onednn_float32"] = product_gflops(torch.float32, onednn=True)
    return {
        "processor": processor(),
        "avx512": "avx512f" in flags.split(),
        "cpus": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "onednn_products": onednn,
        "onednn_log_prob_products": onednn_log_prob_products(torch.float32, torch.device("cpu")),
        "gflops": rates,
    }


def summary(machine: dict[str, Any]) -> str:
    """One line of :func:`describe`'s figures."""
    rates = ", ".join(f"{name} {value:.0f}" for name, value in machine["gflops"].items())
    mkl_scores = machine["onednn_products"] and not machine.get("onednn_log_prob_products", True)
    return (
        f"{machine['processor']} (AVX-512: {'yes' if machine['avx512'] else 'no'}), "
        f"{machine['cpus']} cpus, torch {machine['torch']} on {machine['threads']} threads; "
        f"dense 2048^2 products GFLOP/s: {rates}; oneDNN products in mixtorch: "
        f"{'on' if machine['onednn_products'] else 'off'}"
        f"{' (log-probability products: MKL)' if mkl_scores else ''}"
    )
