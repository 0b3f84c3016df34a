"""What chapter 11 shows, computed from the GPU run records in ``book/results/``.

Every function takes the records (``results.load_records``) and returns text, a table or a figure;
where a record is missing, the output says so and gives the command that produces it. Nothing here
runs a network, so the chapter builds on a CPU in seconds, with or without records.
"""

from __future__ import annotations

import json
from pathlib import Path

from . import gpu_suite
from .results import ROOT

PAPER_TABLES = ROOT / "book" / "data" / "paper_tables_gpu.json"
# The book's shared transcription of the paper's tables (one row per cell); preferred when present.
PAPER_CSV = ROOT / "book" / "data" / "paper_results.csv"
_CSV_NAMES = {"ref (float)": "float", "cifar-10": "cifar10", "cifar-100": "cifar100",
              "vgg-16": "vgg16", "resnet-18": "resnet18"}  # fmt: skip
LABEL = {
    "float": "REF (float)", "bc": "BC", "pq": "PQ", "pmf": "PMF", "gd-tanh": "GD-tanh",
    "md-tanh": "MD-tanh", "md-tanh-s": "MD-tanh-S", "md-softmax": "MD-softmax",
    "md-softmax-s": "MD-softmax-S", "proxconnect": "ProxConnect",
}  # fmt: skip
ARCH_LABEL = {"resnet18": "ResNet-18", "vgg16": "VGG-16", "mobilenetv2": "MobileNetV2"}
# Paper row compared with each of our methods: Table 8's PMF values are the cross-validated ones.
PAPER_ROW = {"pmf": "pmf*"}
SUITE = "python scripts/gpu_suite.py"


def _csv_key(text: str) -> str:
    text = text.strip().lower()
    return _CSV_NAMES.get(text, text)


def paper_tables_from_csv(path=PAPER_CSV) -> dict:
    """The paper's Tables 1, 2 and 5 from the CSV transcription (``table,row,method,space,
    dataset,architecture,levels,accuracy``), in the structure of ``paper_tables``."""
    import csv

    lines = [ln for ln in Path(path).read_text().splitlines() if not ln.startswith("#")]
    tables: dict = {}
    cells = {}
    for row in csv.DictReader(lines):
        t = tables.setdefault(row["table"], {"columns": [], "rows": {}})
        col = [_csv_key(row["dataset"]), _csv_key(row["architecture"])]
        if col not in t["columns"]:
            t["columns"].append(col)
        t["rows"].setdefault(_csv_key(row["method"]), None)
        cells[(row["table"], _csv_key(row["method"]), tuple(col))] = float(row["accuracy"])
    for name, t in tables.items():
        for method in t["rows"]:
            t["rows"][method] = [cells.get((name, method, tuple(c))) for c in t["columns"]]
    return {"source": str(path), "tables": tables}


def paper_tables(path=None) -> dict:
    """The paper's CIFAR accuracies: the shared CSV when the book has it, else this chapter's
    own JSON transcription."""
    if path is None and PAPER_CSV.exists():
        return paper_tables_from_csv(PAPER_CSV)
    return json.loads(Path(path or PAPER_TABLES).read_text())


def paper_value(tables: dict, table: str, method: str, dataset: str, arch: str) -> float | None:
    t = tables["tables"][table]
    row = t["rows"].get(PAPER_ROW.get(method, method))
    col = [dataset, arch]
    if row is None or col not in t["columns"]:
        return None
    return row[t["columns"].index(col)]


def _grid_records(records) -> dict[tuple[str, str, str], dict]:
    """(arch, method, 'binary'/'ternary') -> record, for the grid runs of seed 0 (the extra seeds,
    tagged "seed", would otherwise replace a cell's record by whichever file sorts last)."""
    out = {}
    for rec in records:
        if rec["kind"] == "train" and "grid" in rec["tags"] and "seed" not in rec["tags"]:
            p = rec["protocol"]
            out[(p["arch"], p["method"], gpu_suite._kind(p["levels"]))] = rec
    return out


def _pct(x) -> str:
    return "—" if x is None else f"{100 * x:.2f}" if x <= 1 else f"{x:.2f}"


def missing_runs(records) -> list[gpu_suite.Run]:
    have = {rec["run"] for rec in records}
    return [run for run in gpu_suite.all_runs() if run.name not in have]


def missing_commands(records) -> str:
    """One suite command per batch that still lacks a record, or '' when none is missing."""
    missing = missing_runs(records)
    batches = sorted({run.batch for run in missing}, key=list(gpu_suite.batches()).index)
    return "\n".join(f"{SUITE} run --batch {b}" for b in batches)


def grid_markdown(records, kind: str = "binary", tables=None) -> str:
    """Table 1 (binary) or Table 5 (ternary) on Fashion-MNIST 32x32, beside the paper's CIFAR-10.

    Columns: test accuracy (%) of the rounded network on Fashion-MNIST for each architecture
    of the suite, then the paper's CIFAR-10 numbers for the same architecture. '—' is a missing
    record (or, in a paper column, a method the paper does not report).
    """
    tables = tables or paper_tables()
    grid = _grid_records(records)
    archs = ("resnet18", "vgg16", "mobilenetv2") if kind == "binary" else ("resnet18",)
    methods = gpu_suite.BINARY_R18 if kind == "binary" else gpu_suite.TERNARY_R18
    head = [f"{ARCH_LABEL[a]} FMNIST" for a in archs]
    head += [f"{ARCH_LABEL[a]} CIFAR-10 (paper)" for a in archs]
    lines = ["| method | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for method in methods:
        ours, paper = [], []
        for arch in archs:
            # the float network does not depend on the levels: the ternary table reuses it
            rec = grid.get((arch, method, "binary" if method == "float" else kind))
            ours.append(_pct(rec["test_acc"]) if rec else "—")
            table = "2" if arch == "mobilenetv2" else ("1" if kind == "binary" else "5")
            paper.append(_pct(paper_value(tables, table, method, "cifar10", arch)))
        lines.append(f"| {LABEL[method]} | " + " | ".join(ours + paper) + " |")
    return "\n".join(lines)


def grid_status(records, kind="binary") -> str:
    """How many grid runs of this table (seed 0) have records, in words."""
    grid = _grid_records(records)
    runs = [r for r in gpu_suite.all_runs() if "grid" in r.tags and "seed" not in r.tags]
    wanted = [r for r in runs if gpu_suite._kind(r.levels) == kind or r.method == "float"]
    if kind == "ternary":
        wanted = [r for r in wanted if r.arch == "resnet18"]
    have = [r for r in wanted if (r.arch, r.method, gpu_suite._kind(r.levels)) in grid]
    return f"{len(have)} of {len(wanted)} runs recorded"


def curves_figure(records, arch="resnet18", kind="binary"):
    """Training loss and rounded validation accuracy against epochs, one line per method; None
    when no record of (arch, kind) exists."""
    import matplotlib.pyplot as plt

    grid = _grid_records(records)
    chosen = [(m, r) for (a, m, k), r in sorted(grid.items()) if a == arch and k == kind]
    if not chosen:
        return None
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 3.8))
    for method, rec in chosen:
        per_epoch = rec["protocol"]["iterations"] / rec["protocol"]["epochs"]
        train, val = rec["curves"]["train"], rec["curves"]["val"]
        ax1.plot([p["iteration"] / per_epoch for p in train], [p["loss"] for p in train],
                 label=LABEL.get(method, method))  # fmt: skip
        ax2.plot([p["iteration"] / per_epoch for p in val], [100 * p["val_acc"] for p in val],
                 marker=".", label=LABEL.get(method, method))  # fmt: skip
    ax1.set(xlabel="epoch", ylabel="training loss (soft network)", yscale="log")
    ax2.set(xlabel="epoch", ylabel="validation accuracy, rounded (%)")
    ax2.legend(fontsize=8, ncol=2)
    fig.suptitle(f"{kind} {ARCH_LABEL.get(arch, arch)} on Fashion-MNIST 32x32")
    fig.tight_layout()
    return fig


def throughput_records(records) -> list[dict]:
    """The GPU throughput records (a CPU one kept on purpose is :func:`cpu_throughput_record`)."""
    return [r for r in records
            if r["kind"] == "throughput" and r["environment"]["device_kind"] == "cuda"]  # fmt: skip


def cpu_throughput_record(records, arch: str | None = None) -> dict | None:
    """The newest CPU throughput record kept on purpose (``results.is_cpu_record``; load the
    records with ``include_cpu=True``), for ``arch`` if given; None when there is none."""
    from .results import is_cpu_record

    found = [r for r in records if r["kind"] == "throughput" and is_cpu_record(r)
             and (arch is None or r["setup"]["arch"] == arch)]  # fmt: skip
    return max(found, key=lambda r: r["created_utc"]) if found else None


def throughput_markdown(rec: dict, target: float = 0.95) -> str:
    s = rec["setup"]
    env = rec["environment"]
    if env["device_kind"] == "cuda":
        where = f"{env['device_name']}, torch {env['torch']}, CUDA {env['cuda']}"
    else:
        threads = f", {s['threads']} threads" if "threads" in s else ""
        where = f"CPU {env['device_name']}{threads}, torch {env['torch']}"
    lines = [
        f"{ARCH_LABEL.get(s['arch'], s['arch'])}, batch {s['batch_size']}, {s['precision']}, "
        f"channels_last {s['channels_last']}, {where}, "
        f"median of {s['rounds']} rounds of {s['iterations']} steps",
        "",
        "| method | ms / iteration | images / s | ratio to float | >= target |",
        "|---|---|---|---|---|",
    ]
    for row in rec["rows"]:
        ok = "" if row["method"] == "float" else ("yes" if row["ratio_to_float"] >= target
                                                  else "**no**")  # fmt: skip
        lines.append(f"| {LABEL.get(row['method'], row['method'])} | "
                     f"{row['ms_per_iteration']:.2f} | {row['images_per_second']:.0f} | "
                     f"{row['ratio_to_float']:.3f} | {ok} |")  # fmt: skip
    return "\n".join(lines)


def fast_schedule(records, margin: float = 1.5) -> dict:
    """The fast-schedule candidates against their float reference (same epochs).

    Returns ``{"rows": [...], "reference": acc or None, "best": row or None, "met": bool}``;
    a row is ``{"run", "note", "test_acc", "gap", "within"}`` with accuracies in %.
    """
    by_name = {r["run"]: r for r in records if "fast-schedule" in r.get("tags", [])}
    runs = gpu_suite.fast_runs()
    ref_run = next(r for r in runs if "reference" in r.tags)
    ref = by_name.get(ref_run.name)
    ref_acc = 100 * ref["test_acc"] if ref else None
    rows = []
    for run in runs:
        if run is ref_run:
            continue
        rec = by_name.get(run.name)
        acc = 100 * rec["test_acc"] if rec else None
        gap = None if acc is None or ref_acc is None else ref_acc - acc
        rows.append({"run": run.name, "note": run.notes[-1], "test_acc": acc, "gap": gap,
                     "within": gap is not None and gap <= margin})  # fmt: skip
    done = [r for r in rows if r["test_acc"] is not None]
    best = max(done, key=lambda r: r["test_acc"]) if done else None
    return {"rows": rows, "reference": ref_acc, "reference_run": ref_run.name, "best": best,
            "met": any(r["within"] for r in rows)}  # fmt: skip


def fast_markdown(summary: dict) -> str:
    lines = [
        f"Float reference ({summary['reference_run']}): "
        + ("no record yet" if summary["reference"] is None else f"{summary['reference']:.2f}%"),
        "",
        "| candidate | schedule | test accuracy (%) | points below float | within 1.5 |",
        "|---|---|---|---|---|",
    ]
    for r in summary["rows"]:
        acc = "no record yet" if r["test_acc"] is None else f"{r['test_acc']:.2f}"
        gap = "—" if r["gap"] is None else f"{r['gap']:.2f}"
        within = "—" if r["gap"] is None else ("yes" if r["within"] else "no")
        note = r["note"].split(": ", 1)[-1]
        lines.append(f"| `{r['run']}` | {note} | {acc} | {gap} | {within} |")
    return "\n".join(lines)


def images_per_second(records) -> dict[tuple[str, str], tuple[float, str]]:
    """(arch, method) -> (images/s, basis): throughput records first (the training step alone),
    then the grid runs (wall time, validations included)."""
    out = {}
    for rec in records:
        if rec["kind"] == "train" and "grid" in rec["tags"]:
            p = rec["protocol"]
            out[(p["arch"], p["method"])] = (rec["images_per_second"], "run wall time")
    for rec in throughput_records(records):
        for row in rec["rows"]:
            out[(rec["setup"]["arch"], row["method"])] = (row["images_per_second"],
                                                          "throughput benchmark")  # fmt: skip
    return out


def paper_runs(table: str) -> list[tuple[str, str, str, tuple[float, ...]]]:
    """(dataset, arch, method, levels) of every run behind one of the paper's tables that the
    presets can reproduce (CIFAR-10/100; TinyImageNet is not supported)."""
    from .presets import available

    levels = gpu_suite.TERNARY if table == "5" else gpu_suite.BINARY
    runs = []
    for dataset, arch, method in available(levels):
        if table == "2" and arch != "mobilenetv2":
            continue
        if table in ("1", "5") and arch == "mobilenetv2":
            continue
        runs.append((dataset, arch, method, levels))
    return runs


def reproduce_command(dataset, arch, method, levels) -> str:
    kind = gpu_suite._kind(levels)
    flag = " --levels=-1,0,1" if kind == "ternary" else ""  # "-1,..." alone reads as a flag
    return (f"python -m mdq_teach.train --dataset {dataset} --arch {arch} --method {method} "
            f"--preset paper{flag} --out runs/{dataset}-{arch}-{kind}-{method}")  # fmt: skip


def protocol_cost(records, table: str, iterations: int = gpu_suite.PAPER_ITERATIONS) -> dict:
    """GPU-minutes of one of the paper's tables at 100k iterations of batch 128 per run, from the
    measured images per second; runs whose (arch, method) has no measurement are counted apart."""
    speed = images_per_second(records)
    minutes, unknown, bases = 0.0, [], set()
    runs = paper_runs(table)
    for dataset, arch, method, _ in runs:
        if (arch, method) not in speed:
            unknown.append((dataset, arch, method))
            continue
        rate, basis = speed[(arch, method)]
        minutes += iterations * gpu_suite.BATCH_SIZE / rate / 60
        bases.add(basis)
    return {"runs": len(runs), "measured": len(runs) - len(unknown), "minutes": minutes,
            "unknown": unknown, "bases": sorted(bases)}  # fmt: skip


def cost_markdown(records) -> str:
    lines = [
        "| paper table | runs | runs with a measured speed | GPU-minutes (measured runs) | "
        "GPU-hours | speed from |",
        "|---|---|---|---|---|---|",
    ]
    for table in ("1", "2", "5"):
        c = protocol_cost(records, table)
        mins = "—" if not c["measured"] else f"{c['minutes']:.0f}"
        hours = "—" if not c["measured"] else f"{c['minutes'] / 60:.1f}"
        lines.append(f"| Table {table} | {c['runs']} | {c['measured']} | {mins} | {hours} | "
                     f"{', '.join(c['bases']) or 'no GPU record yet'} |")  # fmt: skip
    return "\n".join(lines)


def reproduce_block(table: str) -> str:
    return "\n".join(reproduce_command(*run) for run in paper_runs(table))


def summary_numbers(records) -> dict:
    """A few numbers for the chapter's prose (None where a record is missing)."""
    grid = _grid_records(records)
    f = grid.get(("resnet18", "float", "binary"))
    m = grid.get(("resnet18", "md-tanh-s", "binary"))
    gap = None if not (f and m) else 100 * (f["test_acc"] - m["test_acc"])
    tp = throughput_records(records)
    worst = None
    for rec in tp:
        if rec["setup"]["arch"] == "resnet18":
            quant = [r for r in rec["rows"] if r["method"] != "float"]
            worst = min(quant, key=lambda r: r["ratio_to_float"]) if quant else None
    return {"r18_gap": gap, "worst_ratio": worst, "epochs": gpu_suite.EPOCHS,
            "iterations": gpu_suite.iterations_for(gpu_suite.EPOCHS)}  # fmt: skip
