// The 404 page behind /watch/<ID> when this relay does not carry <ID>: it
// may simply not have started yet, so the page asks the relay every
// CHECK_MS whether it carries the stream now (/streams/<ID>/status answers
// 200), and then loads the player in its place. It says so in words
// (#state), and keeps window.shoalWaiting current for tests.
(function () {
  'use strict';

  const CHECK_MS = 2000;
  const TIMEOUT_MS = 2000;

  const m = /^\/watch\/([^/]+)\/?$/.exec(location.pathname);
  if (!m) return;
  const statusUrl = '/streams/' + m[1] + '/status';
  const state = document.getElementById('state');
  const report = { checks: 0, lastStatus: null };
  window.shoalWaiting = report;

  function check() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), TIMEOUT_MS);
    fetch(statusUrl, { cache: 'no-store', signal: abort.signal })
      .then((res) => {
        report.lastStatus = res.status;
        if (res.ok) {
          state.textContent = 'the stream is here; opening the player';
          location.reload();
          return;
        }
        state.textContent = 'waiting for the stream to start on this relay';
        setTimeout(check, CHECK_MS);
      })
      .catch(() => {
        report.lastStatus = null;
        state.textContent = 'waiting; the relay does not answer';
        setTimeout(check, CHECK_MS);
      })
      .finally(() => {
        clearTimeout(timer);
        report.checks += 1;
      });
  }

  setTimeout(check, CHECK_MS);
})();
