// Whether the notebook in front has a kernel connected.
() => {
  const w = window.jupyterapp.shell.currentWidget;
  return w?.sessionContext?.session?.kernel?.connectionStatus === 'connected';
}
