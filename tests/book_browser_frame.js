(i) => {
  const input = document.querySelector(`[data-player-test="${i}"]`);
  let root = input.parentElement;
  while (root && root.tagName !== "ARTICLE" && !root.querySelector("img, svg, canvas")) {
    root = root.parentElement;
  }
  return [...root.querySelectorAll("img, svg, canvas")].map((el) =>
    el.tagName === "IMG" ? el.currentSrc || el.src
    : el.tagName === "CANVAS" ? el.toDataURL() : el.outerHTML).join("|");
}
