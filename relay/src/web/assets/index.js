// The stream list behind /: drawn from /api/streams, refreshed every few
// seconds. Accepts the list itself or an object with a "streams" list.
(function () {
  'use strict';

  const REFRESH_MS = 3000;
  const list = document.getElementById('streams');
  const state = document.getElementById('list-state');

  load();

  function load() {
    fetch('/api/streams', { cache: 'no-store' })
      .then((res) => {
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then((body) => show(Array.isArray(body) ? body : body.streams || []),
        (e) => { state.textContent = 'Could not read the list (' + e.message + '); trying again.'; })
      .finally(() => setTimeout(load, REFRESH_MS));
  }

  function show(streams) {
    streams.sort((a, b) => String(a.id).localeCompare(String(b.id)));
    state.textContent = streams.length === 0 ? 'No streams yet.'
      : streams.length === 1 ? '1 stream.' : streams.length + ' streams.';
    list.replaceChildren(...streams.map(item));
  }

  function item(s) {
    const li = document.createElement('li');
    const a = document.createElement('a');
    a.href = '/watch/' + encodeURIComponent(s.id);
    a.textContent = s.id;
    li.append(a, ' ' + details(s));
    return li;
  }

  function details(s) {
    const parts = [s.live ? 'live' : 'not live'];
    if (typeof s.bitrate_bps === 'number') parts.push(kbps(s.bitrate_bps));
    const viewers = (s.subscribers || 0) + (s.http_readers || 0);
    parts.push(viewers === 1 ? '1 viewer' : viewers + ' viewers');
    return '(' + parts.join(', ') + ')';
  }

  function kbps(bps) {
    return bps >= 1e6 ? (bps / 1e6).toFixed(1) + ' Mbit/s' : Math.round(bps / 1e3) + ' kbit/s';
  }
})();
