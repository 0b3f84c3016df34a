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
