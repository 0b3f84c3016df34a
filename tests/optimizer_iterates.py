"""Iterates of ``make_optimizer`` for every method, recorded before the optimizer was rebuilt
from projection and route objects (issue 19), so that the rebuilt one is held to them bit for bit.

``python tests/optimizer_iterates.py`` rewrites ``tests/data/optimizer_iterates.npz``; only do
that when a change of iterates is intended. ``tests/test_stored_iterates.py`` replays the cases.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).parent / "data" / "optimizer_iterates.npz"
STEPS = 4
SHAPES = ((2, 3), (4,))
LEVELS = {"bin": (-1.0, 1.0), "ter": (-1.0, 0.0, 1.0), "asym": (0.0, 1.0)}
DTYPES = {"f32": torch.float32, "f64": torch.float64}
# beta grows every step, so the rescaling of kept duals and the skipped parameter are exercised.
ANNEAL = dict(beta_init=1.5, beta_scale=1.5, beta_scale_interval=1)


def _options() -> dict[str, list[dict]]:
    annealed = [dict(ANNEAL), dict(ANNEAL, beta_schedule="ceil", base="sgd", momentum=0.9)]
    return {
        "float": [{}, dict(base="sgd", momentum=0.9, weight_decay=0.01)],
        "bc": [{}, dict(bc_clip_grad=False), dict(weight_decay=0.01)],
        "pq": [
            dict(pq_lambda=0.3),
            dict(pq_lambda=0.3, pq_reg="l2"),
            dict(pq_lambda=0.3, pq_clamp=False),
            dict(pq_lambda=0.3, pq_reg="l2", pq_clamp=False, base="sgd"),
        ],
        "pmf": [*annealed, dict(ANNEAL, pmf_jacobian="released")],
        "gd-tanh": annealed,
        "md-tanh": [*annealed, dict(ANNEAL, weight_decay=0.01)],
        "md-tanh-s": [*annealed, dict(ANNEAL, latent_init="weights")],
        "md-softmax": [*annealed, dict(ANNEAL, weight_decay=0.01)],
        "md-softmax-s": [*annealed, dict(ANNEAL, latent_init="levels")],
        "proxconnect": [
            dict(ANNEAL, quantizer=q) for q in ("hard", "linear", "binaryrelax", "tanh")
        ],
    }


def cases() -> list[tuple[str, str, dict, str, str]]:
    """(key, method, options, levels name, dtype name) for every recorded run."""
    out = []
    for method, option_list in _options().items():
        for oi, options in enumerate(option_list):
            for lname in LEVELS:
                for dname in DTYPES:
                    if lname == "asym" and dname == "f64":
                        continue  # two asymmetric levels: float32 is where the fast paths differ
                    out.append((f"{method}|{oi}|{lname}|{dname}", method, options, lname, dname))
    return out


def inputs(dtype: torch.dtype) -> tuple[list[torch.Tensor], list[list[torch.Tensor]]]:
    """Fixed initial weights and gradients (one list per step), drawn once from a fixed seed."""
    gen = torch.Generator().manual_seed(19)
    weights = [(torch.rand(s, generator=gen, dtype=torch.float64) * 3 - 1.5) for s in SHAPES]
    grads = [[torch.randn(s, generator=gen, dtype=torch.float64) for s in SHAPES]
             for _ in range(STEPS)]  # fmt: skip
    return [w.to(dtype) for w in weights], [[g.to(dtype) for g in gs] for gs in grads]


def run_case(make_optimizer, method, options, levels, dtype) -> dict[str, np.ndarray]:
    """Step ``make_optimizer`` STEPS times; the second parameter gets no gradient at step 2.
    Returns the weights, latents and stored primals after each step, by name."""
    weights, grads = inputs(dtype)
    params = [torch.nn.Parameter(w.clone()) for w in weights]
    opt = make_optimizer(params, method, lr=0.1, levels=levels, **options)
    record = {}
    for t in range(STEPS):
        for i, p in enumerate(params):
            p.grad = None if (t == 2 and i == 1) else grads[t][i].clone()
        opt.step()
        for i, p in enumerate(params):
            record[f"w{i}_{t}"] = p.detach().numpy().copy()
            state = opt.state[p]
            for key in ("latent", "primal"):
                if key in state:
                    record[f"{key}{i}_{t}"] = state[key].numpy().copy()
    return record


def flatten(record: dict[str, np.ndarray]) -> np.ndarray:
    """One array per case (an npz entry costs a few hundred bytes of headers)."""
    return np.concatenate([record[name].ravel() for name in sorted(record)])


def main() -> None:
    from mdq_teach.nn import make_optimizer

    torch.set_num_threads(1)
    arrays = {}
    for key, method, options, lname, dname in cases():
        record = run_case(make_optimizer, method, options, LEVELS[lname], DTYPES[dname])
        arrays[key] = flatten(record)
        arrays[key + "|names"] = np.array(sorted(record))
    DATA.parent.mkdir(exist_ok=True)
    np.savez_compressed(DATA, **arrays)
    print(f"{len(cases())} cases, {len(arrays)} arrays -> {DATA} ({DATA.stat().st_size} bytes)")


if __name__ == "__main__":
    sys.exit(main())
