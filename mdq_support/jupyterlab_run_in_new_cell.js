// Append a cell below the last one of the notebook in front, with the source code, and run it.
(code) => {
  const nb = window.jupyterapp.shell.currentWidget.content;
  nb.activeCellIndex = nb.widgets.length - 1;
  window.jupyterapp.commands.execute('notebook:insert-cell-below');
  nb.activeCell.model.sharedModel.setSource(code);
  return window.jupyterapp.commands.execute('notebook:run-cell');
}
