"""Drive a real JupyterLab from the project's environment with Debian's Chromium (Playwright).

Shared by ``tests/test_jupyterlab.py`` (does every explorer respond?),
``benchmarks/widget_latency_lab.py`` and ``benchmarks/kernel_roundtrip.py`` (how fast?); the book's
browser tests take its Chromium flags. Everything started here is stopped by PID.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from mdq_support import script

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
WIDGET_CHAPTERS = {
    3: "03_projections_to_mirror_maps.md",
    5: "05_annealing_and_convergence.md",
    7: "07_proxquant_vs_md.md",
    9: "09_binaryconnect_demystified.md",
}

# A checksum of every canvas and image of the explorer's output: it changes when a pixel does.
_PIXELS_JS = script("jupyterlab_pixels.js")

# Watches the explorer from the page itself: at every animation frame after something may have
# drawn (a 2-d canvas call, an image's source set), it compares the pixels with the last ones seen
# and records when they changed. Reading a whole canvas back costs the page 2-3 ms, which on every
# frame of a drag would slow what is measured. Times are performance.now() milliseconds.
_WATCH_JS = script("jupyterlab_watch.js").replace("PIXELS", _PIXELS_JS.strip())
_FIRST_CHANGE_JS = script("jupyterlab_first_change.js")
# The notebook in front: its kernel connected, its cells, running some, idle again, and running
# code in a new cell below the last.
_KERNEL_CONNECTED_JS = script("jupyterlab_kernel_connected.js")
_NOTEBOOK_CELLS_JS = script("jupyterlab_notebook_cells.js")
_RUN_UPTO_JS = script("jupyterlab_run_upto.js")
_IDLE_JS = script("jupyterlab_idle.js")
_RUN_IN_NEW_CELL_JS = script("jupyterlab_run_in_new_cell.js")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterLab:
    """``with JupyterLab(root_dir) as lab:`` a server on 127.0.0.1 with a token, stopped at exit."""

    def __init__(
        self, root_dir: Path, *, env: dict | None = None, bin_dir: Path | None = None,
        windowing: str | None = None, server_args: tuple[str, ...] = (),
    ):
        self.root_dir = Path(root_dir)
        self.server_args = tuple(server_args)
        self.windowing = windowing
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.bin_dir = Path(bin_dir or Path(sys.executable).parent)
        self._tmp = tempfile.TemporaryDirectory(prefix="mdq-lab-")
        tmp = Path(self._tmp.name)
        self.env = {
            **os.environ,
            # This repository's package first, for the kernels too.
            "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
            "JUPYTERLAB_SETTINGS_DIR": str(tmp / "user-settings"),  # no user settings
            "JUPYTERLAB_WORKSPACES_DIR": str(tmp / "workspaces"),
            "JUPYTER_RUNTIME_DIR": str(tmp / "runtime"),
            "OMP_NUM_THREADS": "1",
            "MPLBACKEND": "module://matplotlib_inline.backend_inline",
            **(env or {}),
        }
        self.proc = None
        self.log = tmp / "lab.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self):
        # No news or update pop-ups over the notebook.
        settings = Path(self.env["JUPYTERLAB_SETTINGS_DIR"], "@jupyterlab", "apputils-extension")
        settings.mkdir(parents=True, exist_ok=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False})
        )
        if self.windowing is None:  # as `make` sets JupyterLab up for a teacher
            from mdq_lab.install import WINDOWING_MODE

            self.windowing = WINDOWING_MODE
        if self.windowing != "default":  # "default": JupyterLab's own
            settings_dir = self.env["JUPYTERLAB_SETTINGS_DIR"]
            notebook = Path(settings_dir, "@jupyterlab", "notebook-extension")
            notebook.mkdir(parents=True, exist_ok=True)
            (notebook / "tracker.jupyterlab-settings").write_text(
                json.dumps({"windowingMode": self.windowing})
            )
        cmd = [
            str(self.bin_dir / "jupyter-lab"),
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={self.root_dir}",
            "--expose-app-in-browser",
            "--LabApp.news_url=None",
            *self.server_args,
        ]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self._logfile = open(self.log, "w")  # noqa: SIM115 (closed in __exit__)
        self.proc = subprocess.Popen(
            cmd, env=self.env, stdout=self._logfile, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"JupyterLab exited: {self.log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2):
                    return self
            except OSError:
                time.sleep(0.5)
        self.__exit__(None, None, None)
        raise RuntimeError("JupyterLab did not answer within 120 s")

    def __exit__(self, *exc):
        if self.proc is not None and self.proc.poll() is None:
            # The server and the kernels it started share its session: stop that group, by PID.
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        if self.proc is not None:
            try:  # kernels started by the server in its process group
                os.killpg(self.proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if getattr(self, "_logfile", None):
            self._logfile.close()
        self._tmp.cleanup()
        return False


# When each WebSocket message reached the page (performance.now() ms, the newest 2000): the
# benchmark splits "render done to pixels" into the server's relay and the browser's drawing.
_WS_ARRIVALS_JS = script("jupyterlab_ws_arrivals.js")


def launch_browser(playwright, width: int = 1280, height: int = 900):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": width, "height": height})
    page.add_init_script(_WS_ARRIVALS_JS)
    return browser, page


def open_lab(page, lab: JupyterLab) -> None:
    page.goto(f"{lab.url}/lab?token={lab.token}", wait_until="domcontentloaded")
    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.shell", timeout=120_000)
    page.locator(".jp-DirListing-content").wait_for(timeout=60_000)


def open_by_double_click(page, relpath: str) -> None:
    """Double-click through the file browser, folder by folder, as a person would."""
    for part in Path(relpath).parts:
        item = page.locator(".jp-DirListing-item", has=page.locator(
            ".jp-DirListing-itemText", has_text=part
        )).filter(has_text=part).first
        item.wait_for(timeout=30_000)
        item.dblclick()
    page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Notebook").wait_for(timeout=60_000)
    page.wait_for_function(
        _KERNEL_CONNECTED_JS,
        timeout=120_000,
    )


def notebook_cells(page) -> list[dict]:
    """Source, type and outputs of every cell of the current notebook (from the model)."""
    return page.evaluate(_NOTEBOOK_CELLS_JS)


def run_cells(page, upto: int | None = None, timeout_s: float = 600) -> float:
    """Run all cells (or cells 0..upto) and wait until the kernel is idle; returns seconds."""
    start = time.monotonic()
    if upto is None:
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    else:
        page.evaluate(_RUN_UPTO_JS, upto)
    page.wait_for_function(
        _IDLE_JS,
        timeout=timeout_s * 1000,
        polling=500,
    )
    return time.monotonic() - start


def run_in_new_cell(page, code: str) -> None:
    """Append a cell with ``code`` below the last one and run it (no wait for its output)."""
    page.evaluate(_RUN_IN_NEW_CELL_JS, code)


def save(page) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('docmanager:save')")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=30_000
    )


def close_all(page) -> None:
    page.evaluate("() => window.jupyterapp.commands.execute('application:close-all')")
    time.sleep(0.5)
    for button in page.locator(".jp-Dialog .jp-mod-warn, .jp-Dialog-button.jp-mod-accept").all():
        try:
            button.click(timeout=2000)
        except Exception:  # noqa: BLE001 (no dialog: nothing to confirm)
            pass


def explorer_output(page, cell_index: int):
    cell = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").nth(cell_index)
    cell.scroll_into_view_if_needed()
    out = cell.locator(".jp-Cell-outputWrapper")
    out.locator(".widget-box").first.wait_for(timeout=60_000)
    figure = out.locator("canvas, .widget-image").first
    figure.wait_for(timeout=60_000)
    return out


def controls(output) -> list:
    """(kind, locator) for every slider handle and dropdown of an explorer output."""
    found = [("slider", h) for h in output.locator(".noUi-handle").all()]
    found += [("dropdown", s) for s in output.locator("select").all()]
    return found


def control_label(control) -> str:
    """The description next to a slider handle or a dropdown."""
    box = control.locator("xpath=ancestor::*[contains(@class,'widget-inline-hbox')][1]")
    labels = box.locator(".widget-label").all_inner_texts()
    return next((t.strip() for t in labels if t.strip()), "?")


def pixels(output) -> int:
    return output.evaluate(_PIXELS_JS)


def move(page, kind: str, control, forward: bool = True) -> None:
    """One step of a control: an arrow key on a slider handle, the next option of a dropdown."""
    if kind == "slider":
        control.focus()
        control.press("ArrowRight" if forward else "ArrowLeft")
    else:
        options = control.locator("option").all_inner_texts()
        current = control.evaluate("s => s.selectedIndex")
        control.select_option(index=(current + (1 if forward else -1)) % len(options))


def step(page, output, kind: str, control, forward=True, timeout_s=10.0) -> dict:
    """Move ``control`` once; 'ms' from the input to the first changed pixel on screen, and
    'input' and 'pixels' as wall-clock milliseconds (to line up with the kernel's timeline)."""
    output.evaluate(_WATCH_JS)
    t0 = page.evaluate("() => performance.now()")
    move(page, kind, control, forward)
    page.wait_for_function(
        "() => window.__mdqWatch.changes.length > 0", timeout=timeout_s * 1000, polling="raf"
    )
    t_in, t1, origin, arrivals = page.evaluate(_FIRST_CHANGE_JS)
    t_in = t_in if t_in is not None else t0
    return {
        "ms": t1 - t_in, "input": origin + t_in, "pixels": origin + t1,
        "arrivals": [origin + t for t in arrivals if t >= t_in],
    }


def time_to_pixels(page, output, kind: str, control, forward=True, timeout_s=10.0) -> float:
    """Milliseconds from moving ``control`` to the first changed pixel on screen."""
    return step(page, output, kind, control, forward, timeout_s)["ms"]


# A hand sweeping a slider, paced by the page's own clock: at every animation frame one mouse
# move to where a hand moving at constant speed would be now. A busy page therefore gets fewer,
# larger moves (as a real mouse's coalesced events), never a slower hand: the values a drag
# offers do not depend on how fast this machine (or Playwright's round trips) is.
_SWEEP_JS = script("jupyterlab_sweep.js")


def drag(page, output, handle, seconds: float = 1.5) -> dict:
    """Drag a slider handle across its whole track, left end to right end in ``seconds`` (a
    hand's sweep in class), paced by the page's clock (``_SWEEP_JS``); count the figure updates
    during the sweep and the slider values it passed through (no more updates than values are
    possible). The handle goes back where it was afterwards."""
    box = handle.bounding_box()
    track = handle.locator("xpath=ancestor::*[contains(@class,'noUi-target')][1]").bounding_box()
    y = box["y"] + box["height"] / 2
    x_start = box["x"] + box["width"] / 2
    x0 = track["x"] + 0.02 * track["width"]
    x1 = track["x"] + 0.98 * track["width"]

    def slide(a, b, n):
        page.mouse.move(a, y)
        page.mouse.down()
        page.mouse.move(b, y, steps=n)
        page.mouse.up()

    slide(x_start, x0, 5)  # to the left end, then let the kernel settle
    time.sleep(1.5)
    left = handle.bounding_box()  # the sweep starts on the handle, now at the left end
    output.evaluate(_WATCH_JS)
    t0, t1, moves = handle.evaluate(
        _SWEEP_JS, [left["x"] + left["width"] / 2, x1, y, 1000 * seconds]
    )
    time.sleep(1.5)
    changes, values = page.evaluate(
        "() => { const w = window.__mdqWatch; w.stop = true; return [w.changes, w.values]; }"
    )
    # Back to the start: a slider left at an end can make the next control change nothing
    # (chapter 7 with x~0 = -1.45 starts every method at the minimiser, whatever eta is).
    slide(x1, x_start, 10)
    time.sleep(1.0)
    during = [t for t in changes if t0 <= t <= t1]
    span = (t1 - t0) / 1000
    offered = [t for t in values if t0 <= t <= t1]
    return {
        "seconds": span,
        "moves": moves,
        "updates": len(during),
        "after": len(changes) - len(during),
        "per_s": len(during) / span,
        "values_per_s": len(offered) / span,
    }


def errors_in(cells: list[dict]) -> list[str]:
    """Error outputs (and tracebacks printed by explorers) of a notebook's cells."""
    found = []
    for i, cell in enumerate(cells):
        for out in cell["outputs"]:
            if out.get("output_type") == "error":
                found.append(f"cell {i}: {out.get('ename')}: {out.get('evalue')}")
    return found
