"""Slider-to-pixels latency of every explorer control in a real JupyterLab, and updates per second
during a continuous drag.

Starts JupyterLab from this environment (127.0.0.1, token, free port, the project's JupyterLab
settings) on a copy of the book, opens chapters 3, 5, 7 and 9 by double-click in Debian's Chromium
(Playwright), runs each up to its explorer (chapter 9's training is not run), then for every
control: ``-n`` single steps (an arrow key on a slider handle, the next option of a dropdown), each
timed in the page from the input event to the first animation frame whose canvas pixels differ;
and for every slider one drag across the whole track, left end to right end in ``--drag-seconds``
(1.5 s: a hand's sweep in class), counting the frames whose pixels changed and the slider values the
drag passed through. The drag is paced by the page's clock, one mouse move per animation frame to
where a hand at constant speed would be (``mdq_support/jupyterlab_sweep.js``), so the values it
offers per second are the same on a fast and a slow machine; only what the explorer makes of them
is not.

Then it splits each single step's time into phases, from the kernel's own clock (when the event
reached the explorer, when its render started and ended) and the page's (when each WebSocket
message arrived): to kernel, queued, render (mathematics, blit, PNG of the changed pixels, send),
relay (render end to the last message before the pixels changed: the Jupyter server forwarding)
and draw (the browser decoding and painting). One machine, one clock: the phases add up.

Targets: median <= 100 ms and p90 <= 200 ms per control, >= 10 updates per second in a drag.

Usage: .venv/bin/python benchmarks/widget_latency_lab.py [-n 15] [--chapters 3 5 7 9]
       [--drag-seconds 1.5]
       [--windowing default]  (JupyterLab's notebook windowing; default: the project's)
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # mdq_support (shared drivers) is not installed: found from here
from mdq_support import jupyterlab_driver as lab_driver  # noqa: E402

TARGET_MEDIAN, TARGET_P90, TARGET_RATE = 100.0, 200.0, 10.0
PHASES = ("to kernel", "queued", "render", "to pixels", "relay", "draw")

_KERNEL_TIMES = (
    "import json, mdq_teach.widgets._live as L\n"
    "print(json.dumps([list(x.timeline) for x in L._explorers if x.timeline]))"
)


def _kernel_timeline(page) -> list[tuple[float, float, float]]:
    """(arrived, start, end) wall-clock ms of every render the kernel ran for the explorers of
    the open notebook."""
    lab_driver.run_in_new_cell(page, _KERNEL_TIMES)
    time.sleep(1.0)
    for _ in range(60):
        outputs = lab_driver.notebook_cells(page)[-1]["outputs"]
        if outputs:
            text = outputs[0].get("text", "")
            return sorted(tuple(t) for series in json.loads(text) for t in series) if text else []
        time.sleep(0.5)
    return []


def phases(steps: list[dict], timeline) -> dict[str, list[float]]:
    """Split each single step's latency in four: input to the kernel's handler (the browser
    sends, the server relays), waiting for the loop, the render (math, blit, PNG, send), and
    from the render's end to changed pixels (the server relays, the browser decodes and draws).
    A step is matched with the first render whose event arrived after its input."""
    out = {name: [] for name in PHASES}
    for s in steps:
        render = next((r for r in timeline if r[0] >= s["input"] - 1.0), None)
        if render is None or render[2] > s["pixels"] + 1.0:
            continue  # the pixels came from elsewhere (a full frame after a resize, say)
        arrived, start, end = render
        out["to kernel"].append(arrived - s["input"])
        out["queued"].append(start - arrived)
        out["render"].append(end - start)
        out["to pixels"].append(s["pixels"] - end)
        # The last WebSocket message before the pixels changed carried them (or came after).
        last = max((t for t in s["arrivals"] if t >= end - 1.0), default=None)
        if last is not None:
            out["relay"].append(last - end)
            out["draw"].append(s["pixels"] - last)
    return out


def measure_chapter(page, name: str, n: int, drag_s: float) -> tuple[list[dict], dict]:
    lab_driver.close_all(page)
    page.locator(".jp-BreadCrumbs-home").click()
    lab_driver.open_by_double_click(page, f"book/{name}")
    cells = lab_driver.notebook_cells(page)
    index = max(
        i for i, c in enumerate(cells) if c["type"] == "code" and "explorer(" in c["source"]
    )
    lab_driver.run_cells(page, upto=index)
    output = lab_driver.explorer_output(page, index)
    time.sleep(2.0)  # let the first full frame arrive
    rows, steps = [], []
    for kind, control in lab_driver.controls(output):
        label = lab_driver.control_label(control)
        times = []
        for i in range(n):
            forward = (i // 4) % 2 == 0  # four steps right, four left: stay inside the range
            try:
                steps.append(lab_driver.step(page, output, kind, control, forward))
                times.append(steps[-1]["ms"])
            except Exception:  # noqa: BLE001 (a step that changed nothing: at an end of the range)
                pass
            time.sleep(0.3)
        row = {"chapter": name[:2], "control": label.strip()[:10], "n": len(times)}
        if times:
            t = np.array(times)
            row.update(median=np.median(t), p90=np.percentile(t, 90), max=t.max())
        if kind == "slider":
            row["drag"] = lab_driver.drag(page, output, control, drag_s)
        rows.append(row)
    timeline = _kernel_timeline(page)
    return rows, {"render": [end - start for _, start, end in timeline],
                  "phases": phases(steps, timeline)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=15, help="single steps per control (default 15)")
    parser.add_argument(
        "--chapters", type=int, nargs="+", default=sorted(lab_driver.WIDGET_CHAPTERS)
    )
    parser.add_argument(
        "--windowing", choices=("default", "contentVisibility", "none", "full", "defer"),
        default=None, help="JupyterLab's notebook windowing mode (default: the project's, as "
        "mdq_lab.install sets it; 'default': JupyterLab's own)",
    )
    parser.add_argument(
        "--drag-seconds", type=float, default=1.5,
        help="time of one drag across a slider's track (default 1.5)",
    )
    args = parser.parse_args(argv)
    if not 0.2 <= args.drag_seconds <= 30:
        parser.error("--drag-seconds must lie in [0.2, 30]")
    if args.n < 1:
        parser.error("-n must be >= 1")
    unknown = set(args.chapters) - set(lab_driver.WIDGET_CHAPTERS)
    if unknown:
        parser.error(f"--chapters must be among {sorted(lab_driver.WIDGET_CHAPTERS)}")
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory(prefix="mdq-bench-") as tmp:
        root = Path(tmp)
        shutil.copytree(ROOT / "book", root / "book")
        shutil.copy(ROOT / "jupytext.toml", root / "jupytext.toml")
        rows, kernel = [], {}
        with lab_driver.JupyterLab(root, windowing=args.windowing) as lab, sync_playwright() as p:
            browser, page = lab_driver.launch_browser(p)
            try:
                lab_driver.open_lab(page, lab)
                for chapter in args.chapters:
                    name = lab_driver.WIDGET_CHAPTERS[chapter]
                    chapter_rows, kernel[chapter] = measure_chapter(
                        page, name, args.n, args.drag_seconds
                    )
                    rows += chapter_rows
            finally:
                browser.close()
    header = (
        f"{'ch':<3} {'control':<10} {'steps':>5} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}"
        f" {'drag upd/s':>10} {'values/s':>8} {'drag s':>7}  target"
    )
    print(header)
    print("-" * len(header))
    misses = 0
    for r in rows:
        drag = r.get("drag")
        ok = "median" in r and r["median"] <= TARGET_MEDIAN and r["p90"] <= TARGET_P90
        ok = ok and (drag is None or drag["per_s"] >= TARGET_RATE)
        misses += not ok
        stats = (
            f"{r['median']:>10.0f} {r['p90']:>8.0f} {r['max']:>8.0f}"
            if "median" in r
            else f"{'-':>10} {'-':>8} {'-':>8}"
        )
        dragged = (
            f"{drag['per_s']:>10.1f} {drag['values_per_s']:>8.1f} {drag['seconds']:>7.1f}"
            if drag else f"{'-':>10} {'-':>8} {'-':>7}"
        )
        print(f"{r['chapter']:<3} {r['control']:<10} {r['n']:>5} {stats} {dragged}  "
              f"{'ok' if ok else 'MISS'}")
    print()
    for chapter, k in kernel.items():
        if k["render"]:
            t = np.array(k["render"])
            print(f"chapter {chapter}: kernel render per event (drags included), median "
                  f"{np.median(t):.0f} ms, p90 {np.percentile(t, 90):.0f} ms over {t.size} renders")
    print("\nwhere a single step's time goes, median (p90) ms:")
    print("(to pixels = relay, from the render's end to the last message before the pixels,"
          " + draw)")
    print(f"{'ch':<3} {'steps':>5}" + "".join(f" {name:>16}" for name in PHASES))
    for chapter, k in kernel.items():
        ph = k["phases"]
        cells = "".join(
            f" {np.median(ph[name]):>8.0f} ({np.percentile(ph[name], 90):>4.0f})"
            if ph[name] else f" {'-':>16}" for name in PHASES
        )
        print(f"{chapter:<3} {len(ph['render']):>5}{cells}")
    return 1 if misses else 0


if __name__ == "__main__":
    raise SystemExit(main())
