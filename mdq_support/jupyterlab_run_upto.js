// Run cells 0..i of the notebook in front (all of them when i is the last).
(i) => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  nb.activeCellIndex = i + 1 < nb.widgets.length ? i + 1 : i;
  return window.jupyterapp.commands.execute(
    i + 1 < nb.widgets.length ? 'notebook:run-all-above' : 'notebook:run-all-cells',
  );
}
