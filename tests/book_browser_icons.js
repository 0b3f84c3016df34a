async () => {
  // The theme's icons (<i class="fa-solid fa-bars">, ...) drawn by its stylesheet from Font
  // Awesome's web font, with no Font Awesome script: each visible icon has a glyph before it in
  // a Font Awesome font, and that font has loaded.
  await document.fonts.ready;
  const missing = [];
  let shown = 0;
  for (const el of document.querySelectorAll("i[class*='fa-']")) {
    if (el.getClientRects().length === 0) continue;
    const before = getComputedStyle(el, "::before");
    const glyph = before.content && before.content !== "none" && before.content !== "normal";
    const family = before.fontFamily || "";
    const weight = before.fontWeight || "400";
    const font = `${weight} 16px ${family.split(",")[0]}`;
    const loaded = /Font Awesome/.test(family) && document.fonts.check(font, before.content);
    if (glyph && loaded) shown += 1;
    else missing.push(`${el.className} (${family || "no font"}, content ${before.content})`);
  }
  // An icon inside a search form sits beside the field, not over the text typed into it.
  for (const form of document.querySelectorAll("form.bd-search")) {
    const icon = form.querySelector("i[class*='fa-']");
    const input = form.querySelector("input");
    if (!icon || !input || input.getClientRects().length === 0) continue;
    const i = icon.getBoundingClientRect();
    const f = input.getBoundingClientRect();
    const textStart = f.left + parseFloat(getComputedStyle(input).paddingLeft);
    if (i.right > textStart + 1 && i.left < f.right && i.bottom > f.top && i.top < f.bottom) {
      missing.push(`search icon over the search field's text (${Math.round(i.right - textStart)} px)`);
    }
  }
  return {shown, missing};
}
