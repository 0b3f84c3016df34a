// Marks each display formula that is wider than its box (on a phone) with the side that hides
// more of it, so mdq-book.css can shade that edge: a scroll box on a touch screen shows no
// scrollbar until it is touched. Runs once MathJax has typeset the page, and again on resize.
(() => {
  const mark = (el) => {
    const hidden = el.scrollWidth - el.clientWidth;
    el.classList.toggle("mdq-more-right", hidden > 1 && el.scrollLeft < hidden - 1);
    el.classList.toggle("mdq-more-left", hidden > 1 && el.scrollLeft > 1);
  };
  const markAll = () => {
    for (const el of document.querySelectorAll("mjx-container[display='true']")) mark(el);
  };
  const start = () => {
    const typeset = window.MathJax && MathJax.startup?.promise;
    if (!typeset) return;
    typeset.then(() => {
      for (const el of document.querySelectorAll("mjx-container[display='true']")) {
        el.addEventListener("scroll", () => mark(el), {passive: true});
      }
      markAll();
      window.addEventListener("resize", markAll);
    });
  };
  if (document.readyState === "complete") start();
  else window.addEventListener("load", start);
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
