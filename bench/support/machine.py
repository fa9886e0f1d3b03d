"""What the figures were measured on: CPU, cores, library versions, matrix-product rate."""

import importlib
import os
import platform

import numba
import numpy as np


def cpu_model():
    """Return the CPU model name from ``/proc/cpuinfo`` (the platform's name elsewhere)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(module):
    """Return ``module.__version__``, or ``"not installed"``."""
    try:
        return importlib.import_module(module).__version__
    except ImportError:
        return "not installed"


def quiet_openmp():
    """Set ``OMP_WAIT_POLICY=PASSIVE`` unless set; call it before numba or torch start threads.

    Both torch and numba's OpenMP threading layer keep idle threads spinning
    by default. In one process running several libraries, on a machine shared
    with other work, the spinning threads take the cores the working ones
    need. The bench applies the same setting to every tool.
    """
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


def threading_layer():
    """Return numba's threading layer in use (the configured one before any parallel run)."""
    try:
        return numba.threading_layer()
    except ValueError:
        return f"{numba.config.THREADING_LAYER} (no parallel run yet)"


def info(gflops=None):
    """Return an ordered dict of the machine's description."""
    cores = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else cores
    out = {
        "cpu": cpu_model(),
        "cores": f"{usable} usable of {cores}",
        "numba threads": f"{numba.get_num_threads()} ({threading_layer()} layer)",
        "OMP_WAIT_POLICY": os.environ.get("OMP_WAIT_POLICY", "(unset)"),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "numba": numba.__version__,
        "torch": version("torch"),
        "jax": version("jax"),
        "fastgrad": version("fastgrad"),
    }
    try:
        import psutil

        out["memory"] = f"{psutil.virtual_memory().total / 2**30:.1f} GiB"
    except ImportError:
        pass
    if gflops is not None:
        out["float64 matmul 1024x1024"] = f"{gflops:.1f} GFLOP/s (best of the run)"
    return out


def describe(gflops=None):
    """Return :func:`info` as ``key: value`` lines."""
    return "\n".join(f"{key}: {value}" for key, value in info(gflops).items())
