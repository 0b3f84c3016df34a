// Every figure of the page at the size it is shown now: each SVG (an <img> whose source is an SVG
// file, or an <svg> in a cell output) is loaded into the page as a document of its own, drawn at
// the displayed width and height, and each of its <text> elements measured: its box in CSS px and
// the size of its text at that scale (the text's own size and, for the smaller runs of math text,
// sub- and superscripts, the smallest).
async () => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main");
  const imgs = [...article.querySelectorAll("img")].filter((im) =>
    /\.svg(\?|#|$)/i.test(im.currentSrc || im.src));
  // not the icons of buttons and links (a copy button's, 24 px)
  const inline = [...article.querySelectorAll(".cell_output svg, figure svg")].filter(
    (el) => !el.parentElement.closest("svg, button, a, .copybtn"));
  const figures = [];
  for (const im of imgs) {
    im.loading = "eager";
    try { await im.decode(); } catch (_e) { /* a broken image is test_book_browser's finding */ }
  }
  const label = (el) => {
    const fig = el.closest("figure[id], .cell[id], section[id]");
    const caption = el.closest("figure")?.querySelector("figcaption")?.textContent || "";
    const alt = el.getAttribute("alt") || "";
    return {id: fig?.id || "", text: (caption || alt).replace(/\s+/g, " ").trim().slice(0, 70)};
  };
  const host = document.createElement("div");
  host.style.cssText = "position:absolute;left:0;top:0;visibility:hidden;pointer-events:none";
  document.body.appendChild(host);
  const parser = new DOMParser();
  const sources = [
    ...imgs.map((el) => ({el, src: el.currentSrc || el.src})),
    ...inline.map((el) => ({el, src: ""})),
  ];
  for (const [index, {el, src}] of sources.entries()) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;  // hidden (e.g. inside a closed solution)
    const markup = src ? await (await fetch(src)).text() : el.outerHTML;
    const svg = parser.parseFromString(markup, "image/svg+xml").documentElement;
    if (svg.tagName.toLowerCase() !== "svg") continue;
    const copy = document.importNode(svg, true);
    copy.setAttribute("width", `${r.width}px`);
    copy.setAttribute("height", `${r.height}px`);
    host.replaceChildren(copy);
    const origin = copy.getBoundingClientRect();
    const texts = [];
    for (const t of copy.querySelectorAll("text")) {
      const content = (t.textContent || "").replace(/\s+/g, " ").trim();
      if (!content) continue;
      const m = t.getScreenCTM();
      const scale = Math.hypot(m.a, m.b);  // CSS px per user unit (matplotlib rotates, not skews)
      const runs = [t, ...t.querySelectorAll("tspan")].filter((s) =>
        [...s.childNodes].some((n) => n.nodeType === Node.TEXT_NODE && n.nodeValue.trim()));
      if (!runs.length) continue;
      const sizes = runs.map((s) => parseFloat(getComputedStyle(s).fontSize) * scale);
      // The box of the runs that hold text: matplotlib's math text is one <text> of positioned
      // <tspan>s, and the white space between them (never seen) would widen the text's own box.
      const boxes = runs.map((s) => s.getBoundingClientRect());
      const left = Math.min(...boxes.map((b) => b.left));
      const top = Math.min(...boxes.map((b) => b.top));
      const right = Math.max(...boxes.map((b) => b.right));
      const bottom = Math.max(...boxes.map((b) => b.bottom));
      const own = (s) => [...s.childNodes].filter((n) => n.nodeType === Node.TEXT_NODE)
        .map((n) => n.nodeValue.trim()).join("");
      texts.push({
        text: (runs.map(own).join("") || content).slice(0, 40),
        size: Math.max(...sizes),
        smallest: Math.min(...sizes),
        rotated: Math.abs(m.b) > 1e-6,
        fonts: [...new Set(runs.map((s) => getComputedStyle(s).fontFamily.split(",")[0]
          .replace(/["']/g, "").trim()))],
        box: [left - origin.left, top - origin.top, right - left, bottom - top],
      });
    }
    figures.push({index, src: src.split("/").pop().slice(0, 60), ...label(el),
                  width: Math.round(r.width), height: Math.round(r.height), texts});
  }
  host.remove();
  return figures;
}
