"""Per-step cost of each method's optimizer against plain Adam, on ResNet-18 (11.2M parameters).

Only ``optimizer.step()`` is timed: one forward/backward pass fills the gradients once, then every
optimizer steps on those fixed gradients (after ``--warmup`` untimed steps each). The optimizers
take turns, one step each per round for ``--steps`` rounds, so a change of load on a shared
machine hits all of them alike. The table gives the median milliseconds per step and the ratio to
``torch.optim.Adam`` with its default settings measured in the same run, so the ratio is
comparable across machines even when absolute times are not.

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
from tqdm.auto import tqdm

from mdq_teach.nn import METHODS, make_optimizer
from mdq_teach.nn.models import get_model


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _timed_step(optimizer, device) -> float:
    start = time.perf_counter()
    optimizer.step()
    _sync(device)
    return time.perf_counter() - start


def run(device: str, steps: int, warmup: int, batch: int, methods) -> list[tuple[str, float]]:
    device = torch.device(device)
    torch.manual_seed(0)
    model = get_model("resnet18", 10, 3, quantized=True).to(device)
    x = torch.randn(batch, 3, 32, 32, device=device)
    y = torch.randint(10, (batch,), device=device)
    F.cross_entropy(model(x), y).backward()
    names = ["torch.optim.Adam", *methods]
    optimizers = {}
    for name in names:
        if name == "torch.optim.Adam":
            optimizers[name] = torch.optim.Adam(model.parameters(), lr=1e-3)
        else:
            optimizers[name] = make_optimizer(model.parameters(), name, lr=1e-3, beta_scale=1.02)
    times: dict[str, list[float]] = {name: [] for name in names}
    for _ in tqdm(range(warmup), desc="warm-up", leave=False):
        for opt in optimizers.values():
            opt.step()
    _sync(device)
    for _ in tqdm(range(steps), desc="rounds", leave=False):
        for name, opt in optimizers.items():
            times[name].append(_timed_step(opt, device))
    return [(name, statistics.median(times[name])) for name in names]


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
          f"median of {args.steps} interleaved rounds")  # fmt: skip
    adam = rows[0][1]
    print(f"{'optimizer':<18} {'ms/step':>9} {'x Adam':>8}")
    for name, seconds in rows:
        print(f"{name:<18} {1000 * seconds:>9.2f} {seconds / adam:>8.2f}")


if __name__ == "__main__":
    main()
