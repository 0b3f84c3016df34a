"""How long a kernel message takes through the Jupyter server, with and without the project's
server extension (``mdq_lab.server``: TCP_NODELAY on kernel WebSockets).

Starts two Jupyter servers from this environment (127.0.0.1, token, free port), the first with
the extension as ``make`` enables it, the second with it switched off; on each, a kernel and a
WebSocket client in this process. It sends ``-n`` tiny execute requests one after the other, each
after the previous one's idle status (as ipywidgets sends a slider's next value), and prints, per
server, the median and p90 milliseconds to the kernel's busy and idle status and their ratio.

Usage: .venv/bin/python benchmarks/kernel_roundtrip.py [-n 60]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # mdq_support (shared drivers) is not installed: found from here
from mdq_support import jupyterlab_driver as lab_driver  # noqa: E402

WITHOUT = ('--ServerApp.jpserver_extensions={"mdq_lab.server": False}',)


def _request(session: str) -> tuple[str, str]:
    msg_id = uuid.uuid4().hex
    header = {"msg_id": msg_id, "msg_type": "execute_request", "username": "",
              "session": session, "version": "5.3", "date": ""}  # fmt: skip
    content = {"code": "pass", "silent": False, "store_history": False,
               "user_expressions": {}, "allow_stdin": False}  # fmt: skip
    return msg_id, json.dumps({"header": header, "parent_header": {}, "metadata": {},
                               "channel": "shell", "content": content})  # fmt: skip


async def _roundtrips(lab, n: int) -> np.ndarray:
    from tornado.websocket import websocket_connect

    req = urllib.request.Request(
        f"{lab.url}/api/kernels?token={lab.token}", data=b'{"name": "python3"}', method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=60) as answer:
        kernel = json.load(answer)["id"]
    session = uuid.uuid4().hex
    ws = await websocket_connect(
        f"ws://127.0.0.1:{lab.port}/api/kernels/{kernel}/channels"
        f"?token={lab.token}&session_id={session}"
    )
    await asyncio.sleep(2.0)  # the kernel's start-up messages
    times = []
    for i in range(n + 5):
        msg_id, text = _request(session)
        t0 = time.perf_counter()
        await ws.write_message(text)
        busy = None
        while True:
            msg = json.loads(await ws.read_message())
            if msg.get("parent_header", {}).get("msg_id") != msg_id or msg["msg_type"] != "status":
                continue
            if msg["content"]["execution_state"] == "busy":
                busy = time.perf_counter()
            elif msg["content"]["execution_state"] == "idle":
                break
        if i >= 5:  # the first few warm the kernel up
            times.append((1e3 * (busy - t0), 1e3 * (time.perf_counter() - t0)))
        await asyncio.sleep(0.02)
    ws.close()
    return np.array(times)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=60, help="round trips per server (default 60)")
    args = parser.parse_args(argv)
    if args.n < 5:
        parser.error("-n must be >= 5")
    rows = {}
    for name, server_args in (("with labserver", ()), ("without", WITHOUT)):
        with tempfile.TemporaryDirectory() as tmp:
            with lab_driver.JupyterLab(Path(tmp), server_args=server_args) as lab:
                rows[name] = asyncio.run(_roundtrips(lab, args.n))
    print(f"{'server':<16} {'to busy ms':>16} {'to idle ms':>16}   (median (p90), {args.n} each)")
    for name, t in rows.items():
        cells = "".join(
            f" {np.median(t[:, k]):>8.1f} ({np.percentile(t[:, k], 90):>5.1f})" for k in (0, 1)
        )
        print(f"{name:<16}{cells}")
    ratio = np.median(rows["without"][:, 1]) / np.median(rows["with labserver"][:, 1])
    print(f"\nround trip to idle, without / with: {ratio:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
