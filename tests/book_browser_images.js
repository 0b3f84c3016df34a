async () => Promise.all([...document.images].map(async (im) => {
  im.loading = "eager";
  try { await im.decode(); } catch (_e) { /* an image that cannot decode keeps naturalWidth 0 */ }
  return {src: (im.currentSrc || im.src).slice(0, 80), width: im.naturalWidth};
}))
