"""Per-step cost of each method's optimizer against plain Adam, on ResNet-18 (11.2M parameters).

Only ``optimizer.step()`` is timed: one forward/backward pass fills the gradients once, then each
optimizer steps ``--steps`` times on those fixed gradients (after ``--warmup`` untimed steps). The
table gives the median milliseconds per step and the ratio to ``torch.optim.Adam`` measured in the
same run, so the ratio is comparable across machines even when absolute times are not.

    python benchmarks/optimizer_overhead.py                 # CPU
    python benchmarks/optimizer_overhead.py --device cuda   # GPU (synchronised timings)
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time

import torch
import torch.nn.functional as F

from mdq_teach.nn import METHODS, make_optimizer
from mdq_teach.nn.models import get_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_steps(optimizer, device, steps: int, warmup: int) -> float:
    """Median seconds of one ``optimizer.step()``."""
    for _ in range(warmup):
        optimizer.step()
    _sync(device)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        optimizer.step()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def run(device: str, steps: int, warmup: int, batch: int, methods) -> list[tuple[str, float]]:
    device = torch.device(device)
    torch.manual_seed(0)
    model = get_model("resnet18", 10, 3, quantized=True).to(device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(10, (batch,), device=device)
    F.cross_entropy(model(x), y).backward()
    grads = [p.grad.clone() for p in model.parameters()]
    rows = []
    for name in ["torch.optim.Adam", *methods]:
        for p, g in zip(model.parameters(), grads, strict=True):
            p.grad = g.clone()
        if name == "torch.optim.Adam":
            opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        else:
            opt = make_optimizer(model.parameters(), name, lr=1e-3, beta_scale=1.02)
        rows.append((name, time_steps(opt, device, steps, warmup)))
        del opt
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per method")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--batch", type=int, default=16, help="batch of the one backward pass")
    parser.add_argument("--methods", nargs="*", default=list(METHODS))
    args = parser.parse_args()
    rows = run(args.device, args.steps, args.warmup, args.batch, args.methods)
    n = sum(p.numel() for p in get_model("resnet18", 10, 3).parameters())
    where = torch.cuda.get_device_name() if args.device.startswith("cuda") else platform.processor()
    print(f"ResNet-18 ({n:,} parameters), device {args.device} ({where or platform.machine()}), "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
          f"median of {args.steps} steps")  # fmt: skip
    adam = rows[0][1]
    print(f"{'optimizer':<18} {'ms/step':>9} {'x Adam':>8}")
    for name, seconds in rows:
        print(f"{name:<18} {1000 * seconds:>9.2f} {seconds / adam:>8.2f}")


if __name__ == "__main__":
    main()
