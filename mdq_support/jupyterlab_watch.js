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
