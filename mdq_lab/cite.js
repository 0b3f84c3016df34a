// mdq-teach-citations: the book's {cite} roles read in JupyterLab as in the built book.
// Written directly in the form JupyterLab loads a prebuilt extension (a container on
// window._JUPYTERLAB with init and get), so installing it needs no Node build; it uses no shared
// module. mdq_lab/cite.py fills in the citations and installs it.
//
// jupyterlab-myst 2.x loads no bibliography: it draws every {cite} key as a warning span titled
// "Citation Not Found" (a React component). This rewrites that span's text and title in place,
// never adding or removing nodes React owns, and does it again whenever React sets them back.
(() => {
  // biome-ignore lint/suspicious/noRedundantUseStrict: JupyterLab loads this as a classic script, not a module
  'use strict';
  const CITATIONS = __CITATIONS__;
  const NOT_FOUND = 'Citation Not Found';
  const SELECTOR = `span[title="${NOT_FOUND}"], span.mdq-cite`;
  // As the book: "[A, 2019]" alone, "[A, 2019, B, 2015]" for several keys. jupyterlab-myst
  // reads {cite} as narrative (mystmd's "A (2019)"): its group of several keys gets no brackets
  // and a no-break space after each comma; sphinxcontrib-bibtex reads it as "[A, 2019]". The
  // chapters write only {cite} (labmarkup checks), so every citation here is drawn that way.
  const STYLE = `
    .mdq-cite > svg { display: none; }
    .mdq-cite[data-mdq-url] { cursor: pointer; }
    .mdq-cite:hover { text-decoration: underline dotted; }
    .cite-group:has(> .mdq-cite)::before { content: "["; }
    .cite-group:has(> .mdq-cite)::after { content: "]"; }
    .cite-group > .mdq-cite::after { content: ", "; }
    .cite-group > .mdq-cite:last-of-type::after { content: ""; }
  `;

  function textNode(span) {
    for (const node of span.childNodes) {
      if (node.nodeType === Node.TEXT_NODE) return node;
    }
    return null;
  }

  function render(span) {
    const text = textNode(span);
    if (!text) return;
    // Already rendered and unchanged: its key is kept; otherwise the text is the key (React
    // has just drawn it, or drawn it again after an edit of the cell).
    const key = span.dataset.mdqShown === text.data ? span.dataset.mdqCite : text.data.trim();
    const ref = CITATIONS[key];
    if (!ref) return; // not in the bibliography: jupyterlab-myst's warning stays
    const grouped = span.parentElement?.classList.contains('cite-group');
    const shown = grouped ? ref.label : `[${ref.label}]`;
    // Writes only what differs: each write is a mutation that calls us again.
    if (text.data !== shown) text.data = shown;
    if (span.title !== ref.text) span.title = ref.text;
    if (span.dataset.mdqCite !== key) span.dataset.mdqCite = key;
    if (span.dataset.mdqShown !== shown) span.dataset.mdqShown = shown;
    if (!span.classList.contains('mdq-cite')) {
      span.classList.remove('text-yellow-600');
      span.classList.add('mdq-cite');
    }
    if (ref.url && span.dataset.mdqUrl !== ref.url) {
      span.dataset.mdqUrl = ref.url;
      span.addEventListener('click', () => window.open(span.dataset.mdqUrl, '_blank', 'noopener'));
    }
  }

  function scan(root) {
    if (root.nodeType !== Node.ELEMENT_NODE) return;
    if (root.matches(SELECTOR)) render(root);
    for (const span of root.querySelectorAll(SELECTOR)) render(span);
  }

  function onMutations(records) {
    // Only what changed is looked at: widget figures update the page many times a second.
    for (const r of records) {
      if (r.type === 'childList') {
        for (const node of r.addedNodes) scan(node);
        if (r.target.nodeType === Node.ELEMENT_NODE && r.target.matches(SELECTOR)) {
          render(r.target);
        }
      } else if (r.type === 'characterData') {
        const parent = r.target.parentElement;
        if (parent?.matches(SELECTOR)) render(parent);
      } else if (r.target.matches(SELECTOR)) {
        render(r.target);
      }
    }
  }

  const plugin = {
    id: 'mdq-teach-citations:plugin',
    description: "The book's {cite} roles as the book shows them.",
    autoStart: true,
    activate: () => {
      const style = document.createElement('style');
      style.id = 'mdq-teach-citations';
      style.textContent = STYLE;
      document.head.appendChild(style);
      new MutationObserver(onMutations).observe(document.body, {
        subtree: true, childList: true, characterData: true,
        attributes: true, attributeFilter: ['title'],
      });
      scan(document.body);
    },
  };

  window._JUPYTERLAB = window._JUPYTERLAB || {};
  const containers = window._JUPYTERLAB;
  containers['mdq-teach-citations'] = {
    init: () => Promise.resolve(),
    get: (module) => module === './extension'
      ? Promise.resolve(() => ({ __esModule: true, default: [plugin] }))
      : Promise.reject(new Error(`mdq-teach-citations has no module ${module}`)),
  };
})();
