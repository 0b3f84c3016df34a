(SLACK) => {
  const article = document.querySelector("article.bd-article") || document.querySelector("main");
  const name = (el) => {
    const id = el.id || el.closest("[id]")?.id || "";
    const text = (el.textContent || "").replace(/\s+/g, " ").trim().slice(0, 60);
    return `${el.tagName.toLowerCase()} #${id}: "${text}"`;
  };
  const cut = [];
  const sel = "mjx-container[display], table, pre, img, svg, canvas, video, iframe";
  for (const el of article.querySelectorAll(sel)) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;  // hidden (e.g. inside a closed solution)
    // The nearest box, the element itself included, that does not let content show past its edge.
    let box = el;
    while (box !== document.body && getComputedStyle(box).overflowX === "visible") {
      box = box.parentElement;
    }
    const overflow = getComputedStyle(box).overflowX;
    const edge = box === document.body ? {left: 0, right: innerWidth} : box.getBoundingClientRect();
    const wider = el.scrollWidth > el.clientWidth + SLACK || r.right > edge.right + SLACK
      || r.left < edge.left - SLACK;
    if (wider && overflow !== "auto" && overflow !== "scroll") {
      cut.push({element: name(el), width: Math.round(Math.max(r.width, el.scrollWidth)), overflow});
    }
  }
  // Every box in the article that scrolls sideways says so before it is touched: mdq-book.js marks
  // it and mdq-book.css shades (box-shadow) or fades (mask-image) the edge that hides more.
  const uncued = [];
  for (const el of article.querySelectorAll("*")) {
    const style = getComputedStyle(el);
    if (style.overflowX !== "auto" && style.overflowX !== "scroll") continue;
    if (el.scrollWidth <= el.clientWidth + SLACK || el.getClientRects().length === 0) continue;
    const cue = style.boxShadow !== "none" || (style.maskImage || "none") !== "none";
    if (!cue) uncued.push({element: name(el), hidden: el.scrollWidth - el.clientWidth});
  }
  return {pageWidth: document.documentElement.scrollWidth, cut, uncued};
}
