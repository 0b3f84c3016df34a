"""A Jupyter server extension for live explorers: kernel messages leave the server at once.

Jupyter server (2.21) never switches Nagle's algorithm off on a kernel's WebSocket. A small
message written while the previous one is still unacknowledged then waits for the browser's
delayed ACK, up to 40 ms on Linux. A slider drag is a chain of such small messages: ipywidgets
sends the slider's next value only once the kernel has reported idle for the previous one, so each
wait lowers the figure updates a drag can show (``benchmarks/kernel_roundtrip.py`` measures it).

``labsetup`` enables this module as a server extension; it makes the server use
``NoDelayConnection`` unless a configuration already chose another connection class.
"""

from __future__ import annotations

from jupyter_server.services.kernels.connection.channels import ZMQChannelsWebsocketConnection


class NoDelayConnection(ZMQChannelsWebsocketConnection):
    """Jupyter server's kernel WebSocket connection with TCP_NODELAY set once it is open."""

    def connect(self):
        self.websocket_handler.set_nodelay(True)
        return super().connect()


def _jupyter_server_extension_points():
    return [{"module": __name__}]


def _load_jupyter_server_extension(serverapp) -> None:
    if serverapp.kernel_websocket_connection_class is not ZMQChannelsWebsocketConnection:
        serverapp.log.info(
            "mdq_teach: kernel_websocket_connection_class is configured (%s); left as it is",
            serverapp.kernel_websocket_connection_class,
        )
        return
    serverapp.kernel_websocket_connection_class = NoDelayConnection
    serverapp.web_app.settings["kernel_websocket_connection_class"] = NoDelayConnection
    serverapp.log.info("mdq_teach: kernel WebSockets send without delay (TCP_NODELAY)")
