"""The command line answers bad values with argparse's one-line error and exit status 2."""

import json

import pytest
import torch

from mdq_support import bad_input_sweep_train as SWEEP_TRAIN
from mdq_teach.nn.trainer import main

BASE = ["--dataset", "synthetic", "--arch", "smallconv", "--iterations", "4", "--no-progress",
        "--device", "cpu", "--batch-size", "16", "--eval-interval", "2",
        "--bn-batches", "1"]  # fmt: skip

# (extra argv, the name the one-line error must contain)
BAD = [
    (["--checkpoint-interval", "0"], "--checkpoint-interval"),
    (["--checkpoint-interval", "-3"], "--checkpoint-interval"),
    (["--checkpoint-interval", "1.5"], "--checkpoint-interval"),
    (["--momentum", "nan"], "--momentum"),
    (["--momentum", "1"], "--momentum"),
    (["--momentum", "-0.1"], "--momentum"),
    (["--lr", "-0.1"], "--lr"),
    (["--lr", "0"], "--lr"),
    (["--lr", "inf"], "--lr"),
    (["--lr", "abc"], "--lr"),
    (["--lr-scale", "0"], "--lr-scale"),
    (["--lr-interval", "0"], "--lr-interval"),
    (["--weight-decay", "-1"], "--weight-decay"),
    (["--weight-decay", "nan"], "--weight-decay"),
    (["--batch-size", "0"], "--batch-size"),
    (["--iterations", "0"], "--iterations"),
    (["--iterations", "1e3"], "--iterations"),
    (["--beta-init", "0"], "--beta-init"),
    (["--beta-scale", "0.5"], "allow-decreasing-beta"),  # refused without the opt-in
    (["--beta-scale", "nan"], "--beta-scale"),
    (["--beta-scale-interval", "0"], "--beta-scale-interval"),
    (["--beta-max", "-inf"], "--beta-max"),
    (["--beta-max", "nan"], "--beta-max"),
    (["--beta-max", "0.5"], "beta_max"),  # below beta_init = 1
    (["--pq-lambda", "-1e-4", "--method", "pq"], "--pq-lambda"),
    (["--eval-interval", "0"], "--eval-interval"),
    (["--bn-batches", "0"], "--bn-batches"),
    (["--log-interval", "0"], "--log-interval"),
    (["--stop-after", "0"], "--stop-after"),
    (["--stop-after", "50"], "stop_after"),  # beyond --iterations 4
    (["--seed", "-1"], "--seed"),
    (["--train-size", "0"], "--train-size"),
    (["--val-size", "-5"], "--val-size"),
    (["--test-size", "x"], "--test-size"),
    (["--levels", "1,-1"], "--levels"),
    (["--levels", "1"], "--levels"),
    (["--levels", "a,b"], "--levels"),
    (["--levels", "-1,nan"], "--levels"),
    (["--amp", "fp16"], "--amp"),
    (["--lr-schedule", "linear"], "--lr-schedule"),
    (["--base", "lbfgs"], "--base"),
    (["--quantizer", "round", "--method", "proxconnect"], "--quantizer"),
    (["--quantizer", "hard", "--method", "md-tanh-s"], "quantizer"),  # ignored by md-tanh-s
    (["--latent-init", "weights", "--method", "float"], "latent-init"),  # float has no latents
    (["--momentum", "0.9", "--base", "adam"], "momentum"),  # adam takes no momentum
    (["--beta-scale", "1.1", "--method", "bc"], "--beta-scale"),  # bc has no beta
    (["--pq-lambda", "0.1", "--method", "md-tanh-s"], "--pq-lambda"),
    (["--device", "tpu"], "device"),
    (["--preset", "paper"], "synthetic"),  # the paper has no synthetic column
    (["--arch", "vgg16", "--dataset", "fashion-mnist"], "vgg16"),
    # Values only the loaded data can refute (synthetic: 512 training images after the split).
    (["--val-size", "100000"], "val_size"),
    (["--train-size", "100000"], "train_size"),
    (["--batch-size", "100000"], "batch_size"),
]


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    (tmp_path / "file").write_text("x")
    with pytest.raises(SystemExit) as exit_info:
        main(BASE + ["--out", str(tmp_path / "file")])
    assert exit_info.value.code == 2
    assert "out must be a folder" in capsys.readouterr().err.strip().splitlines()[-1]


@pytest.mark.parametrize("extra,name", BAD, ids=[" ".join(e) for e, _ in BAD])
def test_bad_value_is_a_one_line_error_with_status_2(tmp_path, capsys, extra, name):
    with pytest.raises(SystemExit) as exit_info:
        main(BASE + ["--out", str(tmp_path / "run")] + extra)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.strip().splitlines()[-1]
    assert last.startswith("python -m mdq_teach.train: error: ") and name in last
    assert not list((tmp_path / "run").glob("*"))  # refused before anything was written


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error without CUDA")
def test_cuda_without_cuda_is_a_clear_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(BASE[:-6] + ["--device", "cuda", "--out", str(tmp_path)])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "device 'cuda'" in last and "CUDA is not available" in last


def test_resume_with_nothing_to_resume_is_an_error(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(BASE + ["--out", str(tmp_path / "empty"), "--resume"])
    assert exit_info.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert "no checkpoint.pt in" in last and "drop --resume" in last
    assert not (tmp_path / "empty").exists()


FASHION = ["--dataset", "fashion-mnist", "--arch", "smallconv", "--iterations", "2",
           "--no-progress", "--device", "cpu", "--batch-size", "8", "--val-size", "8",
           "--eval-interval", "2", "--bn-batches", "1"]  # fmt: skip


@pytest.fixture
def debian_fashion(monkeypatch, tmp_path):
    """A stand-in for Debian's Fashion-MNIST: the copy a given root must not fall back to."""
    from test_fetch import write_fashion

    from mdq_teach import fetch

    folder = tmp_path / "debian"
    write_fashion(folder, n_train=40, n_test=8)
    monkeypatch.setattr(fetch, "DEBIAN_FASHION_DIR", folder)
    return folder


def test_a_data_root_without_the_data_is_refused_not_replaced(tmp_path, capsys, debian_fashion):
    root = tmp_path / "nonexistent"
    with pytest.raises(SystemExit) as exit_info:
        main(FASHION + ["--data-root", str(root), "--out", str(tmp_path / "run")])
    assert exit_info.value.code == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert str(root / "fashion-mnist") in err
    assert f"mdq_teach.fetch fashion-mnist --root {root}" in err
    assert not (tmp_path / "run" / "result.json").exists()


def test_result_names_the_data_folder_actually_read(tmp_path, debian_fashion):
    from test_fetch import write_fashion

    root = tmp_path / "mine"
    write_fashion(root / "fashion-mnist", n_train=40, n_test=8, seed=1)
    main(FASHION + ["--data-root", str(root), "--out", str(tmp_path / "a")])
    on_disk = json.loads((tmp_path / "a" / "result.json").read_text())
    assert on_disk["data_source"] == str((root / "fashion-mnist").resolve())
    main(FASHION + ["--out", str(tmp_path / "b")])  # no root: Debian's copy, and the record says so
    on_disk = json.loads((tmp_path / "b" / "result.json").read_text())
    assert on_disk["data_source"] == str(debian_fashion.resolve())


def test_a_second_run_into_the_same_out_is_refused_unless_asked(tmp_path, capsys):
    out = str(tmp_path / "run")
    main(BASE + ["--out", out])
    metrics = (tmp_path / "run" / "metrics.jsonl").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        main(BASE + ["--out", out, "--lr", "0.01"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    last = err.strip().splitlines()[-1]
    assert "Traceback" not in err and "already holds a run" in last and "--overwrite" in last
    assert (tmp_path / "run" / "metrics.jsonl").read_text() == metrics
    main(BASE + ["--out", out, "--lr", "0.01", "--overwrite"])


def test_default_out_folders_of_runs_differing_in_lr_differ(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    outs = []
    for lr in ("0.001", "0.002"):
        main(BASE + ["--lr", lr])
        outs.append(json.loads(capsys.readouterr().out.strip().splitlines()[-1])["out"])
    assert outs[0] != outs[1] and all(o.startswith("runs/synthetic-smallconv-") for o in outs)


# -------------------------------------------------------------- the torch part's bad-input sweep
# mdq_support.bad_input_sweep_train holds the cases (the benchmark's table and these tests never
# drift apart).
SWEEP_TRAIN_CASES = SWEEP_TRAIN.cases()


@pytest.mark.parametrize(
    "area, label, interface, expect, code, make",
    SWEEP_TRAIN_CASES,
    ids=[f"{area}: {label}" for area, label, *_ in SWEEP_TRAIN_CASES],
)
def test_every_case_of_the_torch_sweep_is_a_clear_error(
    tmp_path, area, label, interface, expect, code, make
):
    verdict, message, status = SWEEP_TRAIN.judge(tmp_path, interface, expect, make)
    assert verdict == "clear error", f"{area}: {label}: {verdict}: {message}"
    assert status == code, message  # 2: usage or a file at fault; 1: data missing
