() => [...document.querySelectorAll("article input[type=range]")].map((input, i) => {
  let root = input.parentElement;
  while (root && root.tagName !== "ARTICLE" && !root.querySelector("img, svg, canvas")) {
    root = root.parentElement;
  }
  input.setAttribute("data-player-test", String(i));
  return {index: i, hasPicture: !!(root && root.tagName !== "ARTICLE"),
          min: input.min, max: input.max, value: input.value};
})
