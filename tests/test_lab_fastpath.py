"""What makes a drag fluent in JupyterLab, tested without a browser: the page's forwarded control
values (``LiveFigure.watch``, ``apply_browser_state``), the server extension
(``mdq_lab.server``) and the page configuration ``mdq_lab.install`` writes.
``tests/test_jupyterlab.py`` checks them in a real JupyterLab."""

import json

import pytest

ipywidgets = pytest.importorskip("ipywidgets")

from mdq_lab import install as labsetup  # noqa: E402
from mdq_teach.widgets import _live  # noqa: E402
from mdq_teach.widgets.projections import projection_explorer  # noqa: E402


class _Sent:
    """Records what a widget sends to the page."""

    def __init__(self, widget, monkeypatch):
        self.messages = []
        monkeypatch.setattr(widget, "_send", lambda msg, buffers=None: self.messages.append(msg))


def test_browser_state_sets_the_control_runs_observers_and_sends_nothing_back(monkeypatch):
    slider = _live.slider("beta", 1.0, [0.5, 1.0, 2.0, 4.0])
    sent = _Sent(slider, monkeypatch)
    seen = []
    slider.observe(lambda change: seen.append(change["new"]), names="value")
    assert _live.apply_browser_state(slider, {"index": 3})
    assert slider.value == 4.0 and seen == [4.0]
    assert sent.messages == []  # no update, no echo: the handle is not pulled back
    # ipywidgets' own message with the same value, later: no change, so no second render
    slider.set_state({"index": 3})
    assert seen == [4.0]
    # A value set in the kernel is still sent to the page as usual.
    slider.index = 0
    assert any(m.get("method") == "update" for m in sent.messages)


def test_browser_state_refuses_other_properties():
    slider = _live.slider("beta", 1.0, [0.5, 1.0, 2.0])
    assert not _live.apply_browser_state(slider, {"description": "x"})
    assert not _live.apply_browser_state(slider, {"index": 2, "disabled": True})
    assert slider.value == 1.0 and slider.description == "beta" and not slider.disabled
    box = ipywidgets.FloatSlider(value=0.5, min=0, max=1)
    assert _live.apply_browser_state(box, {"value": 0.25}) and box.value == 0.25


def test_forwarded_value_renders_once_and_in_order():
    """The page forwards each value, and ipywidgets' own message brings the newest value later:
    every state is rendered once, in the order the page offered them."""
    box = projection_explorer(beta=1.0, beta_range=(0.5, 8.0), canvas="png")
    live, slider = box.live, box.slider
    grid = [v for _, v in slider.options]
    start = live.renders
    shown = []
    slider.observe(lambda change: shown.append(change["new"]), names="value")

    def forward(i):
        live._on_web_message(live.widget, {"type": "controls", "id": slider.model_id,
                                           "state": {"index": i}}, [])  # fmt: skip

    assert slider.model_id in live._watched  # the explorer watches its slider
    i = slider.index
    forward(i + 1)
    forward(i + 2)
    slider.set_state({"index": i + 2})  # the throttled message: the newest value, nothing new
    forward(i + 3)
    assert shown == grid[i + 1 : i + 4]
    assert live.renders - start == 3
    # Messages for controls the explorer does not watch, or malformed ones, change nothing.
    forward_other = {"type": "controls", "id": "no-such-model", "state": {"index": 0}}
    live._on_web_message(live.widget, forward_other, [])
    live._on_web_message(live.widget, {"type": "controls", "id": slider.model_id}, [])
    live._on_web_message(live.widget, ["not", "a", "dict"], [])
    assert slider.index == i + 3 and live.renders - start == 3


def test_web_canvas_lists_the_watched_controls():
    pytest.importorskip("anywidget")
    box = projection_explorer(beta=1.0, canvas="web")
    assert box.live.widget.controls == [box.slider]
    state = box.live.widget.get_state()
    assert state["controls"] == [f"IPY_MODEL_{box.slider.model_id}"]


def test_server_extension_sets_nodelay_and_keeps_a_configured_class():
    pytest.importorskip("jupyter_server")
    from jupyter_server.services.kernels.connection.channels import (
        ZMQChannelsWebsocketConnection,
    )

    from mdq_lab import server as labserver

    calls = []

    class Handler:
        def set_nodelay(self, value):
            calls.append(value)

    conn = labserver.NoDelayConnection.__new__(labserver.NoDelayConnection)
    object.__setattr__(conn, "_trait_values", {"websocket_handler": Handler()})
    monkey = []
    original = ZMQChannelsWebsocketConnection.connect
    try:
        ZMQChannelsWebsocketConnection.connect = lambda self: monkey.append("connected")
        labserver.NoDelayConnection.connect(conn)
    finally:
        ZMQChannelsWebsocketConnection.connect = original
    assert calls == [True] and monkey == ["connected"]

    class Log:
        def info(self, *args):
            pass

    class App:
        log = Log()

        def __init__(self, cls):
            self.kernel_websocket_connection_class = cls
            self.web_app = type("W", (), {"settings": {}})()

    default = App(ZMQChannelsWebsocketConnection)
    labserver._load_jupyter_server_extension(default)
    assert default.kernel_websocket_connection_class is labserver.NoDelayConnection
    assert default.web_app.settings["kernel_websocket_connection_class"] is (
        labserver.NoDelayConnection
    )

    class Own(ZMQChannelsWebsocketConnection):
        pass

    configured = App(Own)
    labserver._load_jupyter_server_extension(configured)
    assert configured.kernel_websocket_connection_class is Own
    assert configured.web_app.settings == {}
    assert labserver._jupyter_server_extension_points() == [{"module": labserver.__name__}]


def test_setup_writes_server_and_page_config_and_keeps_what_was_there(tmp_path):
    page = labsetup.page_config_path(tmp_path)
    page.parent.mkdir(parents=True)
    page.write_text(json.dumps({"disabledExtensions": {"other:plugin": True}, "x": 1}))
    labsetup.install(tmp_path)
    config = json.loads(page.read_text())
    assert config["x"] == 1
    assert config["disabledExtensions"] == {
        "other:plugin": True, **{p: True for p in labsetup.QUIET_PLUGINS}
    }
    # The server's config enables the extension while mdq_teach can be imported (it can here;
    # tests/test_lab_install.py starts a server without it).
    from traitlets.config import Config

    c = Config()
    exec(labsetup.server_config_path(tmp_path).read_text(), {"c": c})
    c.ServerApp.jpserver_extensions = c.ServerApp.jpserver_extensions.get_value({})
    assert c.ServerApp.jpserver_extensions == {"mdq_lab.server": True}
    # Idempotent; and the older list form of disabledExtensions is kept too.
    page.write_text(json.dumps({"disabledExtensions": ["old:plugin"]}))
    labsetup.install(tmp_path)
    labsetup.install(tmp_path)
    assert json.loads(page.read_text())["disabledExtensions"] == {
        "old:plugin": True, **{p: True for p in labsetup.QUIET_PLUGINS}
    }
    page.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        labsetup.install(tmp_path)
