(() => {
  const arrivals = [];
  window.__mdqArrivals = arrivals;
  const Native = window.WebSocket;
  window.WebSocket = class extends Native {
    constructor(...args) {
      super(...args);
      this.addEventListener('message', () => {
        arrivals.push(performance.now());
        if (arrivals.length > 2000) arrivals.splice(0, 1000);
      });
    }
  };
})();
