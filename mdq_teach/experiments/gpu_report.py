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
BASE_WIDTH = 64  # channels of ResNet-18's first stage in mdq_teach.nn.models, the paper's


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


def grid_cells(records) -> dict[tuple[str, str, str], list[dict]]:
    """(arch, method, 'binary'/'ternary') -> the grid runs' records of that cell, every seed,
    ordered by seed."""
    out: dict[tuple[str, str, str], list[dict]] = {}
    for rec in records:
        if rec["kind"] == "train" and "grid" in rec["tags"]:
            p = rec["protocol"]
            out.setdefault((p["arch"], p["method"], gpu_suite._kind(p["levels"])), []).append(rec)
    for cell in out.values():
        cell.sort(key=lambda r: r["protocol"]["seed"])
    return out


def _grid_records(records) -> dict[tuple[str, str, str], dict]:
    """(arch, method, 'binary'/'ternary') -> the cell's seed-0 record (the extra seeds are tagged
    "seed"); a cell holding only extra seeds has none."""
    out = {}
    for key, cell in grid_cells(records).items():
        first = [r for r in cell if "seed" not in r["tags"]]
        if first:
            out[key] = first[0]
    return out


def cell_summary(cell: list[dict]) -> dict:
    """Test accuracy (%) over a cell's seeds: mean, sample standard deviation (0 for one seed),
    min, max, n and the seeds."""
    import statistics

    accs = [100 * r["test_acc"] for r in cell]
    return {"mean": statistics.fmean(accs), "sd": statistics.stdev(accs) if len(accs) > 1 else 0.0,
            "min": min(accs), "max": max(accs), "n": len(accs),
            "seeds": [r["protocol"]["seed"] for r in cell]}  # fmt: skip


def _cell_text(cell) -> str:
    if not cell:
        return "—"
    s = cell_summary(cell)
    return f"{s['mean']:.2f}" if s["n"] == 1 else f"{s['mean']:.2f} ± {s['sd']:.2f} ({s['n']})"


def provenance(records, kind: str | None = None) -> str:
    """Where the grid's numbers come from, read from the records: devices, torch, epochs, sizes."""
    cells = [r for key, cell in grid_cells(records).items() if kind in (None, key[2])
             for r in cell]  # fmt: skip
    if not cells:
        return "no grid record yet"
    devices = sorted({r["environment"]["device_name"] for r in cells})
    torches = sorted({r["environment"]["torch"] for r in cells})
    epochs = sorted({r["protocol"]["epochs"] for r in cells})
    sizes = sorted({(r["protocol"]["train_size"], r["protocol"]["test_size"]) for r in cells})
    precisions = sorted({str(r["protocol"].get("amp") or "float32") for r in cells})
    return (f"{len(cells)} runs on {', '.join(devices)} (torch {', '.join(torches)}, "
            f"{', '.join(precisions)}), {', '.join(f'{e:g}' for e in epochs)} epochs each, "
            + ", ".join(f"{a:,} training / {b:,} test images" for a, b in sizes)
            + f", the networks at the paper's width (base width {BASE_WIDTH})")  # fmt: skip


def ranking(records, arch: str = "resnet18", kind: str = "binary") -> list[dict]:
    """The methods of one (arch, kind) ordered by mean test accuracy over seeds, with the gap to
    the float network's mean in points (positive: below float)."""
    cells = grid_cells(records)
    ref = cells.get((arch, "float", "binary"))
    ref_mean = cell_summary(ref)["mean"] if ref else None
    rows = []
    for (a, method, k), cell in cells.items():
        if a != arch or k != kind or method == "float":
            continue
        s = cell_summary(cell)
        s.update(method=method, gap=None if ref_mean is None else ref_mean - s["mean"])
        rows.append(s)
    return sorted(rows, key=lambda r: -r["mean"])


def ranking_markdown(records, arch: str = "resnet18", kind: str = "binary", tables=None) -> str:
    """:func:`ranking` as a table, with each method's rank in the paper's CIFAR-10 table.

    The paper's accuracies themselves are in :func:`grid_markdown`, which the chapter shows just
    before: each of the paper's numbers appears once in the book."""
    tables = tables or paper_tables()
    table = "1" if kind == "binary" else "5"
    rows = ranking(records, arch, kind)
    paper = {r["method"]: paper_value(tables, table, r["method"], "cifar10", arch) for r in rows}
    known = sorted((v for v in paper.values() if v is not None), reverse=True)
    lines = ["| rank | method | mean test accuracy (%) | sd | min – max | seeds | points below "
             "float | paper rank (CIFAR-10) |", "|---" * 8 + "|"]
    for i, r in enumerate(rows, 1):
        pv = paper[r["method"]]
        lines.append(
            f"| {i} | {LABEL[r['method']]} | {r['mean']:.2f} | {r['sd']:.2f} | "
            f"{r['min']:.2f} – {r['max']:.2f} | {r['n']} | "
            + ("—" if r["gap"] is None else f"{r['gap']:.2f}") + " | "
            + ("—" if pv is None else str(known.index(pv) + 1)) + " |"
        )
    return "\n".join(lines)


def gap_to_float(records, method: str = "md-tanh-s", arch: str = "resnet18") -> dict | None:
    """Mean test accuracy of float and ``method`` (binary) over their seeds and the gap in points;
    None while either cell lacks a record."""
    cells = grid_cells(records)
    f, m = cells.get((arch, "float", "binary")), cells.get((arch, method, "binary"))
    if not (f and m):
        return None
    fs, ms = cell_summary(f), cell_summary(m)
    return {"float": fs, "method": ms, "gap": fs["mean"] - ms["mean"],
            "epochs": f[0]["protocol"]["epochs"]}  # fmt: skip


def frozen_from(rec: dict) -> int | None:
    """The first validation from which the rounded network's validation loss never changes
    again (its weights stopped crossing a rounding threshold), or None if it changes at the end."""
    val = rec["curves"]["val"]
    if len(val) < 2 or val[-1]["val_loss"] != val[-2]["val_loss"]:
        return None
    i = len(val) - 1
    while i > 0 and val[i - 1]["val_loss"] == val[-1]["val_loss"]:
        i -= 1
    return val[i]["iteration"]


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
    of the suite (mean ± sample standard deviation (seeds) where a cell has several seeds), then
    the paper's CIFAR-10 numbers for the same architecture. '—' is a missing record (or, in a
    paper column, a method the paper does not report).
    """
    tables = tables or paper_tables()
    cells = grid_cells(records)
    archs = ("resnet18", "vgg16", "mobilenetv2") if kind == "binary" else ("resnet18",)
    methods = gpu_suite.BINARY_R18 if kind == "binary" else gpu_suite.TERNARY_R18
    head = [f"{ARCH_LABEL[a]} FMNIST" for a in archs]
    head += [f"{ARCH_LABEL[a]} CIFAR-10 (paper)" for a in archs]
    lines = ["| method | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for method in methods:
        ours, paper = [], []
        for arch in archs:
            # the float network does not depend on the levels: the ternary table reuses it
            cell = cells.get((arch, method, "binary" if method == "float" else kind))
            ours.append(_cell_text(cell))
            table = "2" if arch == "mobilenetv2" else ("1" if kind == "binary" else "5")
            paper.append(_pct(paper_value(tables, table, method, "cifar10", arch)))
        lines.append(f"| {LABEL[method]} | " + " | ".join(ours + paper) + " |")
    return "\n".join(lines)


def grid_status(records, kind="binary") -> str:
    """How many grid runs of this table have records (seed 0 of each cell), in words."""
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
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(6.5, 5.2), layout="constrained")
    for i, (method, rec) in enumerate(chosen):
        per_epoch = rec["protocol"]["iterations"] / rec["protocol"]["epochs"]
        train, val = rec["curves"]["train"], rec["curves"]["val"]
        style = dict(label=LABEL.get(method, method), **_style(i, method))
        ax1.plot([p["iteration"] / per_epoch for p in train], [p["loss"] for p in train],
                 **{**style, "marker": None})  # fmt: skip
        ax2.plot([p["iteration"] / per_epoch for p in val], [100 * p["val_acc"] for p in val],
                 **style)  # fmt: skip
    ax1.set(xlabel="epoch", ylabel="training loss (soft network)", yscale="log")
    ax2.set(xlabel="epoch", ylabel="validation accuracy, rounded (%)")
    # one legend for both panels, below them (in a panel it would hide curves)
    fig.legend(*ax2.get_legend_handles_labels(), loc="outside lower center", ncols=3,
               fontsize="small")
    fig.suptitle(f"{kind} {ARCH_LABEL.get(arch, arch)} on Fashion-MNIST 32x32")
    return fig


_MARKERS = ("o", "s", "^", "v", "D", "P", "X", "*", "<", ">")
_LINES = ("-", "--", ":", "-.")


def _style(i: int, method: str | None = None) -> dict:
    """Colour, marker and line style of a method (``plots.method_style``: the same in every
    chapter), or of the i-th line when the method has none: told apart without colour too."""
    from mdq_teach.plots import METHOD_STYLES, method_style

    if method in METHOD_STYLES:
        return {**method_style(method), "markersize": 4}
    return {"color": f"C{i % 10}", "marker": _MARKERS[i % len(_MARKERS)],
            "linestyle": _LINES[i % len(_LINES)], "markersize": 4}  # fmt: skip


def seeds_figure(records, arch="resnet18", kinds=("binary", "ternary")):
    """Every seed's test accuracy per method (dots) and the mean (bar), one panel per kind of
    levels, methods ordered by mean; None without records."""
    import matplotlib.pyplot as plt

    panels = [(k, ranking(records, arch, k)) for k in kinds]
    panels = [(k, rows) for k, rows in panels if rows]
    if not panels:
        return None
    cells = grid_cells(records)
    # one panel under the other: each has its own ranking, and a phone's column is narrow
    fig, axes = plt.subplots(len(panels), 1, figsize=(6.5, 3.4 * len(panels)), squeeze=False,
                             layout="constrained")  # fmt: skip
    for ax, (kind, rows) in zip(axes[:, 0], panels, strict=True):
        ref = cells.get((arch, "float", "binary"))
        if ref:
            ax.axvline(cell_summary(ref)["mean"], color="0.4", linestyle="--",
                       label="float (mean)")  # fmt: skip
        for y, row in enumerate(rows):
            accs = [100 * r["test_acc"] for r in cells[(arch, row["method"], kind)]]
            ax.plot(accs, [y] * len(accs), "o", color="C0", markersize=5, alpha=0.8)
            ax.plot([row["mean"]] * 2, [y - 0.3, y + 0.3], color="C3", linewidth=2)
        ax.set_yticks(range(len(rows)), [LABEL[r["method"]] for r in rows])
        ax.invert_yaxis()
        ax.set(xlabel="test accuracy of the rounded network (%)",
               title=f"{kind}, {ARCH_LABEL.get(arch, arch)}")  # fmt: skip
        ax.legend(loc="upper left", fontsize="small")  # the lower left holds the weakest method
    return fig


def beta_figure(records, arch="resnet18", methods=("md-tanh", "md-tanh-s", "md-softmax",
                                                    "md-softmax-s")):  # fmt: skip
    """Rounded validation accuracy against beta for the mirror methods, every seed; None without
    records."""
    import matplotlib.pyplot as plt

    cells = grid_cells(records)
    chosen = [(m, cells[(arch, m, "binary")]) for m in methods if (arch, m, "binary") in cells]
    if not chosen:
        return None
    fig, ax = plt.subplots(figsize=(6.5, 3.8), layout="constrained")
    for i, (method, cell) in enumerate(chosen):
        for j, rec in enumerate(cell):
            val = rec["curves"]["val"]
            ax.plot([p["beta"] for p in val], [100 * p["val_acc"] for p in val],
                    label=LABEL[method] if j == 0 else None, **_style(i, method))  # fmt: skip
    ax.set(xscale="log", xlabel=r"$\beta$ at the validation", ylim=(0, 100),
           ylabel="validation accuracy, rounded (%)")  # fmt: skip
    ax.legend(fontsize="small")
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


def throughput_markdown(rec: dict, target: float | None = 0.95) -> str:
    """The benchmark's table; ``target=None`` leaves out the target column (the 0.95 target is
    the GPU's: on a CPU the forward and backward passes hide the optimizer)."""
    s = rec["setup"]
    env = rec["environment"]
    if env["device_kind"] == "cuda":
        where = f"{env['device_name']}, torch {env['torch']}, CUDA {env['cuda']}"
    else:
        threads = f", {s['threads']} threads" if "threads" in s else ""
        where = f"CPU {env['device_name']}{threads}, torch {env['torch']}"
    head = ["method", "ms / iteration", "images / s", "ratio to float"]
    head += [] if target is None else [">= target"]
    lines = [
        f"{ARCH_LABEL.get(s['arch'], s['arch'])}, batch {s['batch_size']}, {s['precision']}, "
        f"channels_last {s['channels_last']}, {where}, "
        f"median of {s['rounds']} rounds of {s['iterations']} steps",
        "",
        "| " + " | ".join(head) + " |",
        "|---" * len(head) + "|",
    ]
    for row in rec["rows"]:
        cells = [LABEL.get(row["method"], row["method"]), f"{row['ms_per_iteration']:.2f}",
                 f"{row['images_per_second']:.0f}", f"{row['ratio_to_float']:.3f}"]  # fmt: skip
        if target is not None:
            cells.append("" if row["method"] == "float" else
                         "yes" if row["ratio_to_float"] >= target else "**no**")  # fmt: skip
        lines.append("| " + " | ".join(cells) + " |")
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
        # A run that shared its GPU with other workers (--claim-dir) measured the share it got.
        if rec["kind"] == "train" and "grid" in rec["tags"] and not shared_gpu(rec):
            p = rec["protocol"]
            out[(p["arch"], p["method"])] = (rec["images_per_second"], "run wall time")
    for rec in throughput_records(records):
        for row in rec["rows"]:
            out[(rec["setup"]["arch"], row["method"])] = (row["images_per_second"],
                                                          "throughput benchmark")  # fmt: skip
    return out


def shared_gpu(rec: dict) -> bool:
    """Whether the run trained beside other runs on the same GPU (the suite's ``--claim-dir``)."""
    return "--claim-dir" in rec.get("command", "")


def flop_estimate(records, table: str, iterations: int = gpu_suite.PAPER_ITERATIONS) -> dict | None:
    """An *estimate* of the GPU-hours of one of the paper's tables, from FLOP counts.

    Each run's work is ``iterations`` x the FLOPs of one training iteration of batch 128 on
    3x32x32 CIFAR images (torch's counter, :func:`gpu_suite.count_flops`); it runs at the
    effective rate the throughput benchmark measured for float ResNet-18 on the GPU (FLOPs of its
    iteration over its time per iteration), slowed by the method's measured ratio to float on
    ResNet-18. Every architecture is assumed to reach ResNet-18's effective rate, which flatters
    MobileNetV2 (depthwise convolutions use the GPU far less well). None without a GPU throughput
    record of ResNet-18."""
    rec = next((r for r in throughput_records(records) if r["setup"]["arch"] == "resnet18"
                and r["environment"]["device_kind"] == "cuda"), None)  # fmt: skip
    if rec is None:
        return None
    rows = {row["method"]: row for row in rec["rows"]}
    setup_flops = gpu_suite.count_flops("resnet18", rec["setup"]["batch_size"], in_channels=1)
    rate = setup_flops / (rows["float"]["ms_per_iteration"] / 1000)  # FLOP/s
    flops = {}
    seconds, total = 0.0, 0.0
    runs = paper_runs(table)
    for _dataset, arch, method, _levels in runs:
        if arch not in flops:
            flops[arch] = gpu_suite.count_flops(arch, gpu_suite.BATCH_SIZE, in_channels=3)
        work = iterations * flops[arch]
        ratio = rows[method]["ratio_to_float"] if method in rows else 1.0
        total += work
        seconds += work / rate / ratio
    return {"runs": len(runs), "pflop": total / 1e15, "tflops": rate / 1e12,
            "hours": seconds / 3600, "device": rec["environment"]["device_name"]}  # fmt: skip


def flop_estimate_markdown(records) -> str:
    lines = ["| paper table | runs | work (PFLOP) | effective rate (TFLOP/s) | "
             "estimated GPU-hours |", "|---|---|---|---|---|"]  # fmt: skip
    for table in ("1", "2", "5"):
        e = flop_estimate(records, table)
        if e is None:
            return "No GPU throughput record of ResNet-18 yet: no rate to divide by."
        lines.append(f"| Table {table} | {e['runs']} | {e['pflop']:,.0f} | {e['tflops']:.1f} "
                     f"({e['device']}) | {e['hours']:.1f} |")  # fmt: skip
    return "\n".join(lines)


def paper_runs(table: str) -> list[tuple[str, str, str, tuple[float, ...]]]:
    """(dataset, arch, method, levels) of every run behind one of the paper's tables that the
    presets can reproduce (CIFAR-10/100; TinyImageNet is not supported)."""
    from mdq_teach.nn.presets import available

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
