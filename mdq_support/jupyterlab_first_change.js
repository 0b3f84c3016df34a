// Stop the watch (jupyterlab_watch.js) and read its first input and first changed pixels, the
// page's time origin, and the WebSocket arrivals (jupyterlab_ws_arrivals.js) up to that change.
() => {
  const w = window.__mdqWatch;
  w.stop = true;
  const a = (window.__mdqArrivals || []).filter((t) => t <= w.changes[0]);
  return [w.inputs[0], w.changes[0], performance.timeOrigin, a.slice(-20)];
}
