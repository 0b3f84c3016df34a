(SLACK) => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main");
  const col = article.getBoundingClientRect();
  const name = (el) => {
    const id = el.id || el.closest("[id]")?.id || "";
    const cls = (el.getAttribute("class") || "").split(/\s+/).slice(0, 2).join(".");
    const text = (el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 60);
    const section = el.closest("section[id]")?.id || "";
    const tag = el.tagName.toLowerCase() + (cls ? `.${cls}` : "");
    return `${tag} #${id} in section #${section}: "${text}"`;
  };

  // Raw TeX: typeset math leaves no TeX text behind; an undefined macro or a TeX error shows as
  // red mtext / merror inside the rendered formula.
  const tex = /\$\$|\\\(|\\\)|\\\[|\\\]|\\begin\{|\\end\{|\\frac|\\mathbb|\\operatorname/;
  const raw = [];
  const walker = document.createTreeWalker(article, NodeFilter.SHOW_TEXT, {
    acceptNode: (n) => n.parentElement.closest(
      "mjx-container, script, style, pre, code, textarea, .highlight, mjx-assistive-mml"
    ) ? NodeFilter.FILTER_REJECT : NodeFilter.FILTER_ACCEPT,
  });
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (tex.test(n.nodeValue)) raw.push(name(n.parentElement));
  }
  // MathJax's own record of each formula: an undefined macro comes out red (noundefined), other
  // TeX errors as merror. Either is TeX the reader cannot read.
  const doc = window.MathJax && MathJax.startup?.document;
  for (const item of (doc?.math) || []) {
    const mml = MathJax.startup.toMML(item.root);
    if (/<merror|mathcolor="red"/.test(mml)) raw.push(`TeX error in: ${item.math.slice(0, 80)}`);
  }

  // Clipping: the element (or the scroll box that holds it) is wider than what shows of it, or it
  // sticks out of the article column.
  const clipped = [];
  const check = (kind, el, box) => {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) return;  // hidden (e.g. inside a closed solution)
    const out = r.right > col.right + SLACK || r.left < col.left - SLACK;
    const scrolled = box.scrollWidth > box.clientWidth + SLACK;
    if (out || scrolled) {
      clipped.push({kind, element: name(el), width: Math.round(Math.max(r.width, box.scrollWidth)),
                    shown: Math.round(Math.min(box.clientWidth || r.width, col.right - r.left)),
                    column: Math.round(col.width)});
    }
  };
  const all = (sel) => article.querySelectorAll(sel);
  for (const el of all("mjx-container[display]")) check("display math", el, el);
  for (const el of article.querySelectorAll("table")) {
    const box = el.closest(".pst-scrollable-table-container, .table-wrapper") || el;
    check("table", el, box);
  }
  for (const el of all(".cell_output pre, .output pre")) check("code output", el, el);
  for (const el of all("pre")) if (!el.closest(".cell_output, .output")) check("code", el, el);
  for (const el of all(".cell_output img, figure img")) check("image", el, el);

  // A script or stylesheet from another host, or an inline script that names one to load later.
  const cdn = [];
  for (const el of document.querySelectorAll("script, link[rel=stylesheet], link[rel=preload]")) {
    const url = el.src || el.href || "";
    if (/^https?:/.test(url) && new URL(url).hostname !== location.hostname) cdn.push(url);
    const inline = el.tagName === "SCRIPT" && !el.src ? el.textContent : "";
    for (const m of inline.matchAll(/https?:\/\/[^"'`\s]+\.(m?js|css)\b/g)) cdn.push(m[0]);
  }

  return {
    cdn,
    math: article.querySelectorAll("mjx-container").length,
    rawTex: raw,
    clipped,
  };
}
