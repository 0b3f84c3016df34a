(upto) => {
  const cells = window.jupyterapp.shell.currentWidget.content.widgets;
  const found = [];
  cells.forEach((cell, i) => {
    if (cell.model.type !== 'markdown' || i > upto) return;
    const node = cell.node;
    const text = node.querySelector('.jp-MarkdownOutput, .jp-RenderedMarkdown, .myst');
    // biome-ignore lint/performance/useDomNodeTextContent: the text as a reader sees it (CSS applied)
    const shown = text ? text.innerText : '';
    // No JupyterLab extension knows myst-nb's glue roles: it shows their bare key.
    for (const m of cell.model.sharedModel.getSource().matchAll(/\{glue:[a-z]*\}`[^`]*`/g)) {
      found.push(`cell ${i}: ${m[0]}`);
    }
    for (const m of shown.matchAll(/\{glue[^`]*`[^`]*`|glued\("[^"]*"\)/g)) {
      found.push(`cell ${i}: ${m[0]}`);
    }
    const bad = node.querySelectorAll(
      '.katex-error, mjx-merror, [title*="control sequence"], [title*="parse error"]');
    for (const e of bad) found.push(`cell ${i}: math error ${e.title || e.textContent}`);
    for (const e of node.querySelectorAll('[title="Citation Not Found"]')) {
      found.push(`cell ${i}: Citation Not Found: ${e.textContent}`);
    }
    const failed = node.querySelectorAll('[data-mime-type="application/vnd.jupyter.stderr"]');
    for (const e of failed) found.push(`cell ${i}: {eval} error ${e.textContent.slice(0, 120)}`);
  });
  return found;
}
