// Source, type, outputs and execution count of every cell of the notebook in front.
() => window.jupyterapp.shell.currentWidget.content.widgets.map((c) => ({
  type: c.model.type,
  source: c.model.sharedModel.getSource(),
  outputs: c.model.type === 'code' ? c.model.outputs.toJSON() : [],
  count: c.model.type === 'code' ? c.model.executionCount : null,
}))
