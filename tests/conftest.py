import os

from hypothesis import HealthCheck, settings

# CI machines are small and shared: no per-example deadline, a fixed example budget.
settings.register_profile(
    "ci",
    deadline=None,
    max_examples=60,
    suppress_health_check=[HealthCheck.too_slow],
    derandomize=True,
)
settings.register_profile("dev", deadline=None, max_examples=100)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

try:
    import torch
except ImportError:  # the math core is tested without torch too
    torch = None
if torch is not None:
    # Tiny test networks run far faster on one thread than when two threads fight over 2 cores.
    torch.set_num_threads(1)
