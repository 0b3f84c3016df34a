// Whether no cell of the notebook in front is running or queued and its kernel is idle.
() => {
  const w = window.jupyterapp.shell.currentWidget;
  const busy = [...w.content.node.querySelectorAll('.jp-InputPrompt')]
    .some((p) => p.textContent.includes('*'));
  return !busy && w.sessionContext.session.kernel.status === 'idle';
}
