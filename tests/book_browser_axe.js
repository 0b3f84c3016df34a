async (theme) => {
  document.documentElement.dataset.theme = theme;
  await new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)));
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map((v) => ({
    rule: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => `${n.target.join(" ")}: ${(n.failureSummary || "")
      .replace(/\s+/g, " ").slice(0, 200)}`),
  }));
}
