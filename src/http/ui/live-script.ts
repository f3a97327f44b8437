// The dashboard's only script. It keeps scrolling boxes focusable only while they scroll (below), and a page
// with a [data-live] region listens to /ui/events; each "reconciled" event re-fetches that region's HTML from the
// server (already escaped there), so the browser never builds markup itself.
// Constant text: the CSP allows it by its hash.

export const LIVE_SCRIPT = `(() => {
  // A table or text box that may scroll is served focusable (tabindex="0" data-scroll: the keyboard scrolls it, and
  // without this script it stays so); it keeps that only while it does scroll: one that fits is a needless Tab stop.
  const fit = () => {
    for (const el of document.querySelectorAll('[data-scroll]')) {
      if (el.scrollWidth > el.clientWidth || el.scrollHeight > el.clientHeight) el.tabIndex = 0;
      else el.removeAttribute('tabindex');
    }
  };
  fit();
  addEventListener('resize', fit);
  document.addEventListener('toggle', fit, true);
  const root = document.querySelector('[data-live]');
  if (!root || !window.EventSource) return;
  const status = document.querySelector('[data-live-status]');
  const say = (text) => { if (status) status.textContent = text; };
  let busy = false, again = false, broken = false;
  async function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    try {
      const res = await fetch(root.dataset.fragment, { credentials: 'same-origin' });
      if (res.status === 401) { location.reload(); return; }
      if (res.ok) {
        root.innerHTML = await res.text();
        fit();
        root.dataset.updates = String(Number(root.dataset.updates || 0) + 1);
      }
    } catch { /* next event retries */ }
    finally {
      busy = false;
      if (again) { again = false; refresh(); }
    }
  }
  const events = new EventSource(root.dataset.events);
  events.addEventListener('ready', () => {
    document.body.dataset.liveState = 'open';
    say('Live: updates as usage is reconciled');
    // Reports reconciled while the connection was down would otherwise be missed.
    if (broken) { broken = false; refresh(); }
  });
  events.addEventListener('reconciled', (e) => {
    const data = JSON.parse(e.data);
    const last = document.querySelector('[data-live-last]');
    if (last && typeof data.request_id === 'string') {
      const a = document.createElement('a');
      a.href = '/ui/requests/' + encodeURIComponent(data.request_id);
      a.textContent = data.request_id;
      last.replaceChildren('· latest ', a);
    }
    refresh();
  });
  events.onerror = () => { broken = true; document.body.dataset.liveState = 'reconnecting'; say('Reconnecting…'); };
})();`;
