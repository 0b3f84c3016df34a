// The browser side of mdq_teach.widgets._live's web canvas (an anywidget ES module, so no
// JupyterLab extension is built). The first frame is a PNG; every patch after it is raw RGBA
// pixels compressed with zlib, inflated in the page (DecompressionStream) and put in place with
// putImageData, in arrival order. No Blob is involved: Chromium reads a Blob back through its
// browser process before decoding it, which took 30 ms of every update on this busy machine
// (createImageBitmap of a PNG), and ipympl 0.10 also re-encodes its whole canvas as a data URL
// for every image it receives (16-50 ms of the page's main thread).
async function inflate(view) {
  const bytes = new Uint8Array(view.buffer, view.byteOffset, view.byteLength);
  const input = new ReadableStream({ start(c) { c.enqueue(bytes); c.close(); } });
  const reader = input.pipeThrough(new DecompressionStream("deflate")).getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(value);
    size += value.length;
  }
  const out = new Uint8ClampedArray(size);
  let at = 0;
  for (const c of chunks) { out.set(c, at); at += c.length; }
  return out;
}

// Forward the watched controls' values at once (LiveFigure.watch), once per model, not per view.
function initialize({ model }) {
  const stops = [];
  const watch = () => {
    while (stops.length) stops.pop()();
    for (const ref of model.get("controls") || []) {
      const id = String(ref).replace(/^IPY_MODEL_/, "");
      model.widget_manager.get_model(id).then((control) => {
        for (const key of ["index", "value"]) {
          const forward = () => {
            const state = {};
            state[key] = control.get(key);
            model.send({ type: "controls", id, state });
          };
          control.on(`change:${key}`, forward);
          stops.push(() => control.off(`change:${key}`, forward));
        }
      }).catch((err) => console.error("mdq-teach canvas:", err));
    }
  };
  watch();
  model.on("change:controls", watch);
  return () => { while (stops.length) stops.pop()(); model.off("change:controls", watch); };
}

function render({ model, el }) {
  const canvas = document.createElement("canvas");
  canvas.className = "mdq-live-canvas";
  canvas.style.maxWidth = "100%";
  canvas.style.height = "auto";
  canvas.style.display = "block";
  el.appendChild(canvas);
  const ctx = canvas.getContext("2d");
  const size = () => {
    canvas.width = model.get("width");
    canvas.height = model.get("height");
  };
  size();
  let chain = Promise.resolve();
  const then = (work, draw) => {
    chain = Promise.all([work, chain]).then(([done]) => draw(done))
      .catch((err) => console.error("mdq-teach canvas:", err));
  };
  const onFrame = () => {
    const png = model.get("frame");
    if (!png?.byteLength) return;
    then(createImageBitmap(new Blob([png], { type: "image/png" })), (image) => {
      size();
      ctx.drawImage(image, 0, 0);
      image.close();
    });
  };
  const onPatch = (msg, buffers) => {
    if (msg?.type !== "patch") return;
    then(inflate(buffers[0]), (pixels) => {
      ctx.putImageData(new ImageData(pixels, msg.w, msg.h), msg.x, msg.y);
    });
  };
  onFrame();
  model.on("change:frame", onFrame);
  model.on("msg:custom", onPatch);
  model.send({ type: "refresh" });
  return () => {
    model.off("change:frame", onFrame);
    model.off("msg:custom", onPatch);
  };
}
export default { initialize, render };
