() => {
  const pseudo = (el, which) => {
    const c = getComputedStyle(el, which).content;
    return c && c !== 'none' && c !== 'normal' ? JSON.parse(c) : '';
  };
  const shown = (el) => {
    if (el.nodeType === Node.TEXT_NODE) return el.data;
    if (el.nodeType !== Node.ELEMENT_NODE || getComputedStyle(el).display === 'none') return '';
    return pseudo(el, '::before') + [...el.childNodes].map(shown).join('') + pseudo(el, '::after');
  };
  const nb = window.jupyterapp.shell.currentWidget.content.node;
  const cites = [...nb.querySelectorAll(
      '.jp-MarkdownCell .cite-group, .jp-MarkdownCell span[title="Citation Not Found"], '
      + '.jp-MarkdownCell span.mdq-cite')]
    .filter(e => e.matches('.cite-group') || !e.parentElement.closest('.cite-group'));
  const works = [...nb.querySelectorAll('.jp-MarkdownCell span.mdq-cite')]
    .map(e => [e.dataset.mdqCite, e.title]);
  return { texts: cites.map(e => shown(e).trim()), works };
}
