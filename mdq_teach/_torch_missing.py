"""The one message for a machine without torch: which extra, and how to get the small CPU wheel.

``pip install 'mdq-teach[torch]'`` alone resolves torch from PyPI, which on Linux is the CUDA
build (several GB, with its NVIDIA libraries) even on a laptop that has no GPU; installing the CPU
wheel from PyTorch's own index first keeps that step small (the Makefile pins the same version).
"""

from __future__ import annotations

CPU_WHEEL = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
EXTRA = "pip install 'mdq-teach[torch]'"
MESSAGE = (
    "mdq_teach.nn and python -m mdq_teach.train need torch, which is not installed.\n"
    f"  CPU only (small):  {CPU_WHEEL}\n"
    f"  then the extra:    {EXTRA}\n"
    "  (the extra alone installs PyPI's torch, on Linux the CUDA build: several GB)"
)


class TorchMissing(ModuleNotFoundError):
    """``import mdq_teach.nn`` without torch: a ModuleNotFoundError that says what to install."""


def require_torch() -> None:
    """Raise :class:`TorchMissing` if torch cannot be imported because it is absent (a torch that
    is installed but broken raises its own error, unchanged)."""
    try:
        import torch  # noqa: F401
    except ModuleNotFoundError as err:
        if err.name != "torch":
            raise
        raise TorchMissing(MESSAGE, name="torch") from None
