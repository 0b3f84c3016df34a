"""Drive a real JupyterLab from the project's environment with Debian's Chromium (Playwright).

Shared by ``tests/test_jupyterlab.py`` (does every explorer respond?) and
``benchmarks/widget_latency_lab.py`` (how fast?). Everything started here is stopped by PID.
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
_PIXELS_JS = """
(el) => {
  let h = 0;
  // ipympl stacks a transparent canvas for zoom rectangles on the figure's: read the first only.
  const c = el.querySelector('canvas');
  if (c && c.width && c.height) {
    const d = new Uint32Array(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.buffer);
    for (let i = 0; i < d.length; i += 2) h = (Math.imul(h, 31) + d[i]) | 0;
  }
  for (const img of el.querySelectorAll('img')) {
    const s = img.currentSrc || img.src;
    for (let i = 0; i < s.length; i += 7) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  }
  return h;
}
"""

# Watches the explorer from the page itself: at every animation frame after something may have
# drawn (a 2-d canvas call, an image's source set), it compares the pixels with the last ones seen
# and records when they changed. Reading a whole canvas back costs the page 2-3 ms, which on every
# frame of a drag would slow what is measured. Times are performance.now() milliseconds.
_WATCH_JS = """
(el) => {
  const pixels = PIXELS;
  if (!window.__mdqDraws) {
    window.__mdqDraws = { n: 0 };
    const P = CanvasRenderingContext2D.prototype;
    for (const name of ['putImageData', 'drawImage', 'fillRect', 'clearRect']) {
      const native = P[name];
      P[name] = function (...args) { window.__mdqDraws.n += 1; return native.apply(this, args); };
    }
  }
  const draws = window.__mdqDraws;
  const w = { last: pixels(el), changes: [], inputs: [], values: [], stop: false, seen: draws.n };
  // When a slider's value moved (the values a drag offers the kernel).
  new MutationObserver(() => { if (!w.stop) w.values.push(performance.now()); })
    .observe(el, { subtree: true, attributes: true, attributeFilter: ['aria-valuenow'] });
  // An image (the PNG fallback) changes by its source, and a new canvas may replace the old one.
  new MutationObserver(() => { draws.n += 1; })
    .observe(el, { subtree: true, childList: true, attributes: true, attributeFilter: ['src'] });
  // When the browser delivered the input: the start of "slider to pixels".
  const note = () => { if (!w.stop) w.inputs.push(performance.now()); };
  for (const type of ['keydown', 'pointermove', 'change']) {
    el.addEventListener(type, note, { capture: true });
  }
  const tick = () => {
    if (w.stop) return;
    if (draws.n !== w.seen) {
      w.seen = draws.n;
      const h = pixels(el);
      if (h !== w.last) { w.last = h; w.changes.push(performance.now()); }
    }
    requestAnimationFrame(tick);
  };
  requestAnimationFrame(tick);
  window.__mdqWatch = w;
  return performance.now();
}
""".replace("PIXELS", _PIXELS_JS.strip())


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
_WS_ARRIVALS_JS = """
(() => {
  const arrivals = [];
  window.__mdqArrivals = arrivals;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => {
        arrivals.push(performance.now());
        if (arrivals.length > 2000) arrivals.splice(0, 1000);
      });
    }
  };
})();
"""


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
        """() => { const w = window.jupyterapp.shell.currentWidget;
                   return w && w.sessionContext && w.sessionContext.session
                          && w.sessionContext.session.kernel
                          && w.sessionContext.session.kernel.connectionStatus === 'connected'; }""",
        timeout=120_000,
    )


def notebook_cells(page) -> list[dict]:
    """Source, type and outputs of every cell of the current notebook (from the model)."""
    return page.evaluate(
        """() => window.jupyterapp.shell.currentWidget.content.widgets.map(c => ({
             type: c.model.type, source: c.model.sharedModel.getSource(),
             outputs: c.model.type === 'code' ? c.model.outputs.toJSON() : [],
             count: c.model.type === 'code' ? c.model.executionCount : null }))"""
    )


def run_cells(page, upto: int | None = None, timeout_s: float = 600) -> float:
    """Run all cells (or cells 0..upto) and wait until the kernel is idle; returns seconds."""
    start = time.monotonic()
    if upto is None:
        page.evaluate("() => window.jupyterapp.commands.execute('notebook:run-all-cells')")
    else:
        page.evaluate(
            """(i) => { const nb = window.jupyterapp.shell.currentWidget.content;
                        nb.activeCellIndex = i + 1 < nb.widgets.length ? i + 1 : i;
                        return window.jupyterapp.commands.execute(
                          i + 1 < nb.widgets.length ? 'notebook:run-all-above'
                                                     : 'notebook:run-all-cells'); }""",
            upto,
        )
    page.wait_for_function(
        """() => { const w = window.jupyterapp.shell.currentWidget;
                   const busy = [...w.content.node.querySelectorAll('.jp-InputPrompt')]
                                  .some(p => p.textContent.includes('*'));
                   return !busy && w.sessionContext.session.kernel.status === 'idle'; }""",
        timeout=timeout_s * 1000,
        polling=500,
    )
    return time.monotonic() - start


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
    t_in, t1, origin, arrivals = page.evaluate(
        """() => { const w = window.__mdqWatch; w.stop = true;
                   const a = (window.__mdqArrivals || []).filter(t => t <= w.changes[0]);
                   return [w.inputs[0], w.changes[0], performance.timeOrigin, a.slice(-20)]; }"""
    )
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
_SWEEP_JS = """
(el, [x0, x1, y, ms]) => new Promise((resolve) => {
  const fire = (target, type, x) => target.dispatchEvent(new MouseEvent(type, {
    bubbles: true, cancelable: true, composed: true, view: window, clientX: x, clientY: y,
    screenX: x, screenY: y, button: 0, buttons: type === 'mouseup' ? 0 : 1,
  }));
  // Pressed where a finger would be: on whatever part of the handle is under the point.
  fire(document.elementFromPoint(x0, y) || el, 'mousedown', x0);
  const t0 = performance.now();
  let moves = 0;
  const frame = () => {
    const f = Math.min(1, (performance.now() - t0) / ms);
    fire(document.documentElement, 'mousemove', x0 + f * (x1 - x0));
    moves += 1;
    if (f < 1) { requestAnimationFrame(frame); return; }
    const t1 = performance.now();
    fire(document.documentElement, 'mouseup', x1);
    resolve([t0, t1, moves]);
  };
  requestAnimationFrame(frame);
})
"""


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
