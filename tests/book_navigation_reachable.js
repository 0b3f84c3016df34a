(els) => els.map((el) => {
  el.scrollIntoView({block: "center"});
  const r = el.getBoundingClientRect();
  const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
  return {href: el.getAttribute("href"), reachable: !!hit && (hit === el || el.contains(hit)),
          width: r.width, height: r.height};
})
