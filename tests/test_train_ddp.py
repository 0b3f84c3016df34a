"""Two CPU processes under DistributedDataParallel (gloo) train as one process with the global
batch: the ranks end with identical weights, and those match one process within float rounding."""

import json
import os
import socket
import time

import pytest
import torch
import torch.multiprocessing as mp

from mdq_teach.nn import data as data_lib
from mdq_teach.nn.trainer import train

CONFIG = dict(dataset="synthetic", arch="mlp", method="md-tanh-s", iterations=8, eval_interval=4,
              log_interval=4, bn_batches=1, beta_scale=1.5, beta_scale_interval=3, lr=0.01,
              lr_interval=5, lr_scale=0.5, device="cpu", progress=False)  # fmt: skip
PER_RANK = 16


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank, world, ports, folder):
    """One rank, as torchrun would start it: the rendezvous comes from the environment. It runs
    the whole training, then the same training stopped after 6 iterations and resumed."""
    os.environ.update(MASTER_ADDR="127.0.0.1", RANK=str(rank), WORLD_SIZE=str(world),
                      LOCAL_RANK=str(rank))  # fmt: skip
    torch.set_num_threads(1)
    d = data_lib.load("synthetic")
    config = dict(CONFIG, batch_size=PER_RANK, out=os.path.join(folder, "run"))
    os.environ["MASTER_PORT"] = str(ports[0])
    result = train(config, data=d)
    torch.save(result["final_model"].state_dict(), os.path.join(folder, f"rank{rank}.pt"))
    with open(os.path.join(folder, f"history{rank}.json"), "w") as f:
        json.dump(result["history"], f)
    split = dict(config, out=os.path.join(folder, "split"), checkpoint_interval=3)
    os.environ["MASTER_PORT"] = str(ports[1])
    train(dict(split, stop_after=6), data=d)  # 6 is mid logging interval: partial sums saved
    os.environ["MASTER_PORT"] = str(ports[2])
    resumed = train(dict(split, resume=True), data=d)
    torch.save(resumed["final_model"].state_dict(), os.path.join(folder, f"resumed{rank}.pt"))


def _spawn(world, folder, timeout=240):
    context = mp.start_processes(
        _rank, args=(world, [_free_port() for _ in range(3)], str(folder)), nprocs=world,
        join=False,
        start_method="spawn",
    )  # fmt: skip
    deadline = time.monotonic() + timeout
    while not context.join(timeout=1):
        if time.monotonic() > deadline:
            for p in context.processes:
                p.kill()
            pytest.fail(f"{world} ranks did not finish in {timeout} s")


def test_two_ranks_match_one_process_with_the_global_batch(tmp_path):
    _spawn(2, tmp_path)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    for name in ranks[0]:
        assert torch.equal(ranks[0][name], ranks[1][name]), name
    single = train(dict(CONFIG, batch_size=2 * PER_RANK), data=data_lib.load("synthetic"))
    state = single["final_model"].state_dict()
    moved = 0.0
    for name, value in ranks[0].items():
        assert torch.allclose(value, state[name], rtol=0, atol=1e-5), name
        moved = max(moved, (value - train_init(name)).abs().max().item())
    assert moved > 1e-3  # the weights did move: the comparison is not of two initialisations
    history = json.loads((tmp_path / "history0.json").read_text())
    want = [r for r in single["history"] if r["kind"] == "train"]
    got = [r for r in history if r["kind"] == "train"]
    assert [r["loss"] for r in got] == pytest.approx([r["loss"] for r in want], rel=1e-5)
    assert [r["acc"] for r in got] == [r["acc"] for r in want]
    # Rank 0 wrote the files; they record the world size and the global batch.
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["world_size"] == 2 and result["global_batch_size"] == 2 * PER_RANK
    # Stopped after 6 iterations and resumed: exactly the uninterrupted run, files included.
    for r in range(2):
        resumed = torch.load(tmp_path / f"resumed{r}.pt", weights_only=True)
        for name in resumed:
            assert torch.equal(resumed[name], ranks[0][name]), name
    for name in ("metrics.jsonl", "best.pt"):
        assert (tmp_path / "split" / name).read_bytes() == (tmp_path / "run" / name).read_bytes()


def train_init(name):
    """The untrained network's tensor ``name`` (same seed as the runs)."""
    from mdq_teach.nn.models import get_model

    torch.manual_seed(0)
    return get_model("mlp", 10, 3, True, size=32).state_dict()[name]
