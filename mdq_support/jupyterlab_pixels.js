(el) => {
  let h = 0;
  // ipympl stacks a transparent canvas for zoom rectangles on the figure's: read the first only.
  const c = el.querySelector('canvas');
  if (c?.width && c.height) {
    const d = new Uint32Array(c.getContext('2d').getImageData(0, 0, c.width, c.height).data.buffer);
    for (let i = 0; i < d.length; i += 2) h = (Math.imul(h, 31) + d[i]) | 0;
  }
  for (const img of el.querySelectorAll('img')) {
    const s = img.currentSrc || img.src;
    for (let i = 0; i < s.length; i += 7) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  }
  return h;
}
