() => {
  const kernel = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  window.__mdqForwarded = 0;
  kernel.anyMessage.connect((_, args) => {
    const data = args.msg.content?.data;
    if (args.direction === 'send' && args.msg.header.msg_type === 'comm_msg' && data
        && data.method === 'custom' && data.content && data.content.type === 'controls') {
      window.__mdqForwarded += 1;
    }
  });
}
