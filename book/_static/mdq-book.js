// Marks each box that scrolls sideways (a display formula, a table, a code block) with the side that
// hides more of it, so mdq-book.css can shade that edge: a scroll box on a touch screen shows no
// scrollbar until it is touched. Runs once MathJax has typeset the page (formulas change width
// then), and again on resize.
(() => {
  const SCROLLERS = [
    "mjx-container[display='true']",
    ".bd-article .pst-scrollable-table-container",
    ".bd-article div.highlight pre",
  ].join(", ");
  const mark = (el) => {
    const hidden = el.scrollWidth - el.clientWidth;
    el.classList.toggle("mdq-more-right", hidden > 1 && el.scrollLeft < hidden - 1);
    el.classList.toggle("mdq-more-left", hidden > 1 && el.scrollLeft > 1);
    // A box that scrolls is a tab stop, so the arrow keys reach what it hides (axe-core's
    // scrollable-region-focusable); the theme does this for code and tables, not formulas.
    if (hidden > 1 && !el.hasAttribute("tabindex")) el.setAttribute("tabindex", "0");
  };
  const markAll = () => {
    for (const el of document.querySelectorAll(SCROLLERS)) mark(el);
  };
  const start = () => {
    const typeset = (window.MathJax && MathJax.startup?.promise) || Promise.resolve();
    typeset.then(() => {
      for (const el of document.querySelectorAll(SCROLLERS)) {
        el.addEventListener("scroll", () => mark(el), {passive: true});
      }
      markAll();
      window.addEventListener("resize", markAll);
    });
  };
  if (document.readyState === "complete") start();
  else window.addEventListener("load", start);
})();

// Search results: Sphinx's search page quotes a few lines of each page it finds, taken from the
// page's HTML before MathJax has typeset it, so a snippet would show raw TeX ("\(\beta x\)").
// Formulas leave the quoted text: inline ones as an ellipsis, display ones altogether.
// searchtools.js loads after this file; its search starts on DOMContentLoaded, after this.
(() => {
  const wrap = () => {
    if (typeof Search === "undefined" || typeof Search.htmlToText !== "function") return;
    const toText = Search.htmlToText;
    Search.htmlToText = (htmlString, anchor) => {
      const doc = new DOMParser().parseFromString(htmlString, "text/html");
      for (const el of doc.querySelectorAll("div.math, .math-wrapper")) el.remove();
      for (const el of doc.querySelectorAll("span.math")) el.replaceWith("\u2026");
      return toText(doc.documentElement.outerHTML, anchor);
    };
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", wrap);
  else wrap();
})();

// On a phone the theme shows the chapter list and the page's contents as dialogs that close only on
// a tap beside them (or Escape): a tap on an entry of the contents scrolls the page behind the
// dialog and leaves the dialog over it. Close it on any tapped link, so the reader sees where the
// link went (tests/test_book_navigation.py).
(() => {
  const closeOnLink = () => {
    for (const id of ["pst-primary-sidebar-modal", "pst-secondary-sidebar-modal"]) {
      const dialog = document.getElementById(id);
      if (!dialog) continue;
      dialog.addEventListener("click", (event) => {
        if (dialog.open && event.target.closest("a[href]")) dialog.close();
      });
    }
  };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", closeOnLink);
  else closeOnLink();
})();
