// The player page behind /watch/<ID>: plays /streams/<ID>.ts, says what it
// is doing in words (#state), and keeps window.shoalPlayer current so a test
// can read it over the DevTools protocol.
//
// One connection at a time. A connection is an mpegts.js player (Media
// Source Extensions) or, without MSE, the <video> element's own src. Every
// way a connection can end leads to exactly one of:
// - the relay answers 404/503 (not live yet): "waiting for the stream",
//   try again in 1 s;
// - the response ends cleanly: "the stream ended", connect again once the
//   status says live (or every 5 s while the status cannot be read);
// - an error, or no progress for STALL_RECONNECT_MS: reconnect after a
//   back-off of 1 s doubling to 5 s, reset by the next frame shown.
(function () {
  'use strict';

  const TICK_MS = 250;
  const STATUS_MS = 1000;
  const STATUS_TIMEOUT_MS = 2000;
  const WAIT_RETRY_MS = 1000;
  const BACKOFF_MIN_MS = 1000;
  const BACKOFF_MAX_MS = 5000;
  const ENDED_RETRY_MS = 5000;
  const STALL_SHOW_MS = 1500;
  const STALL_RECONNECT_MS = 5000;
  const FIRST_FRAME_TIMEOUT_MS = 10000;
  const MAX_ERRORS = 50;

  const STATE = {
    waiting: 'waiting for the stream',
    playing: 'playing',
    stalled: 'stalled',
    ended: 'the stream ended',
  };

  const $ = (id) => document.getElementById(id);
  const video = $('video');
  const streamId = idFromPath(location.pathname);
  const streamUrl = streamId === null ? null : '/streams/' + encodeURIComponent(streamId) + '.ts';
  const statusUrl = streamId === null ? null : '/streams/' + encodeURIComponent(streamId) + '/status';
  const mse = typeof window.mpegts !== 'undefined' && mpegts.getFeatureList().mseLivePlayback;
  const rvfc = 'requestVideoFrameCallback' in HTMLVideoElement.prototype;

  // Read by tests: JSON.stringify(window.shoalPlayer). Counters only grow;
  // currentTime and lastFrame.mediaTime are on the current connection's
  // timeline (see README of the assets).
  const report = {
    streamId: streamId,
    state: STATE.waiting,
    mode: mse ? 'mse' : 'native',
    framesDecoded: 0,
    framesDropped: 0,
    currentTime: 0,
    bufferedAheadMs: null,
    firstFrameAt: null,
    lastFrame: null,
    connections: 0,
    reconnects: 0,
    live: null,
    latencyMs: null,
    repaired: null,
    lost: null,
    errors: [],
  };
  window.shoalPlayer = report;

  let player = null;
  let generation = 0;
  let retryTimer = null;
  let backoffMs = BACKOFF_MIN_MS;
  let ended = false;
  let statusReadable = false;
  let connectedAt = 0;
  let shownThisConnection = false;
  let lastTime = -1;
  let lastProgressAt = 0;
  let rvfcHandle = null;
  // The element's frame counters restart with each new source; these keep
  // what earlier connections counted.
  let decodedBefore = 0;
  let droppedBefore = 0;

  if (streamId === null) {
    fail('no stream id in this page\'s address (expected /watch/<ID>)');
    return;
  }
  document.title = 'shoal: ' + streamId;
  $('stream-id').textContent = streamId;
  if (!mse) {
    note('This browser has no Media Source Extensions (or mpegts.js did not load), so ' +
      'the page hands the stream to the video element directly, which few browsers can play.');
  }
  if (typeof window.mpegts !== 'undefined') {
    mpegts.LoggingControl.enableVerbose = false;
    mpegts.LoggingControl.enableDebug = false;
  }

  setupUnmute();
  video.addEventListener('playing', () => {
    if (!rvfc) frameShown(null, null);
  });
  video.addEventListener('ended', () => endOfStream());
  video.addEventListener('error', () => {
    if (mse) return; // mpegts.js reports its own errors
    const e = video.error;
    onNativeError(e ? 'media error ' + e.code + (e.message ? ': ' + e.message : '') : 'media error');
  });

  setInterval(tick, TICK_MS);
  pollStatus();
  connect();

  function idFromPath(path) {
    const m = /^\/watch\/([^/]+)\/?$/.exec(path);
    if (!m) return null;
    try {
      const id = decodeURIComponent(m[1]);
      return id === '' ? null : id;
    } catch (_) {
      return null;
    }
  }

  // ---- connections ----

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    teardown();
    const gen = ++generation;
    report.connections += 1;
    connectedAt = performance.now();
    shownThisConnection = false;
    lastTime = -1;
    lastProgressAt = connectedAt;
    watchFrames();
    if (mse) {
      connectMse(gen);
    } else {
      connectNative(gen);
    }
  }

  function connectMse(gen) {
    player = mpegts.createPlayer({ type: 'mpegts', isLive: true, url: streamUrl }, {
      isLive: true,
      enableStashBuffer: false,
      lazyLoad: false,
      liveBufferLatencyChasing: true,
      liveBufferLatencyMaxLatency: 1.5,
      liveBufferLatencyMinRemain: 0.5,
      autoCleanupSourceBuffer: true,
      autoCleanupMaxBackwardDuration: 30,
      autoCleanupMinBackwardDuration: 15,
    });
    player.on(mpegts.Events.ERROR, (type, detail, info) => {
      if (gen === generation) onMseError(type, detail, info);
    });
    player.on(mpegts.Events.LOADING_COMPLETE, () => {
      if (gen === generation) endOfStream();
    });
    player.attachMediaElement(video);
    player.load();
    play();
  }

  // Without MSE the element cannot tell us the HTTP status, so ask first:
  // a GET whose body we drop as soon as the headers are in.
  function connectNative(gen) {
    const abort = new AbortController();
    fetch(streamUrl, { cache: 'no-store', signal: abort.signal }).then((res) => {
      abort.abort();
      if (gen !== generation) return;
      if (res.status === 404 || res.status === 503) {
        notLive();
      } else if (!res.ok) {
        retryAfterError('HTTP ' + res.status + (res.statusText ? ' ' + res.statusText : ''));
      } else {
        video.src = streamUrl;
        play();
      }
    }, (e) => {
      if (gen === generation) retryAfterError('network: ' + e.message);
    });
  }

  function teardown() {
    shownThisConnection = false;
    if (!connected()) return;
    const q = quality();
    decodedBefore += q.decoded;
    droppedBefore += q.dropped;
    if (player !== null) {
      try {
        player.destroy();
      } catch (_) {
        // Already half torn down by its own error; nothing more to free.
      }
      player = null;
    }
    // load() with no source empties the element, which also zeroes its
    // frame counters: they were just added to the ...Before totals.
    video.removeAttribute('src');
    video.load();
  }

  function connected() {
    return player !== null || video.hasAttribute('src');
  }

  function play() {
    const p = video.play();
    if (p !== undefined) {
      p.catch((e) => {
        // Muted autoplay is allowed nearly everywhere; where it is not
        // (power saving, a strict policy) the user has to start it.
        if (e.name === 'NotAllowedError') {
          note('The browser did not start the video by itself: press Unmute or tap the video.');
          video.addEventListener('click', () => video.play(), { once: true });
        }
      });
    }
  }

  function onMseError(type, detail, info) {
    const code = info && typeof info.code === 'number' ? info.code : null;
    if (type === mpegts.ErrorTypes.NETWORK_ERROR &&
        detail === mpegts.ErrorDetails.NETWORK_STATUS_CODE_INVALID &&
        (code === 404 || code === 503)) {
      notLive();
      return;
    }
    let reason;
    if (detail === mpegts.ErrorDetails.NETWORK_STATUS_CODE_INVALID) {
      reason = 'HTTP ' + code + (info && info.msg ? ' ' + info.msg : '');
    } else {
      const msg = info && info.msg ? ': ' + info.msg : '';
      reason = (type === mpegts.ErrorTypes.NETWORK_ERROR ? 'network' : 'media') +
        ' (' + detail + ')' + msg;
    }
    retryAfterError(reason);
  }

  function onNativeError(reason) {
    // The element cannot say "404"; the status can say "not live".
    if (report.live === false) {
      notLive();
    } else {
      retryAfterError(reason);
    }
  }

  function notLive() {
    teardown();
    if (!ended) setState(STATE.waiting);
    schedule(ended && !statusReadable ? ENDED_RETRY_MS : WAIT_RETRY_MS, () => {
      // After the end, only come back when the status says the stream is
      // live again (or cannot be read at all).
      if (ended && statusReadable && report.live !== true) notLive();
      else connect();
    });
  }

  function endOfStream() {
    if (ended) return;
    ended = true;
    setState(STATE.ended);
    // Let the buffered tail play out; the next connection replaces it.
    schedule(statusReadable ? STATUS_MS : ENDED_RETRY_MS, () => notLive());
  }

  function retryAfterError(reason) {
    teardown();
    recordError(reason);
    fail(reason);
    const wait = backoffMs;
    backoffMs = Math.min(backoffMs * 2, BACKOFF_MAX_MS);
    report.reconnects += 1;
    schedule(wait, connect);
  }

  function schedule(ms, fn) {
    clearTimeout(retryTimer);
    retryTimer = setTimeout(fn, ms);
  }

  // ---- frames and progress ----

  function watchFrames() {
    if (!rvfc) return;
    if (rvfcHandle !== null) video.cancelVideoFrameCallback(rvfcHandle);
    const onFrame = (now, meta) => {
      rvfcHandle = video.requestVideoFrameCallback(onFrame);
      frameShown(now, meta);
    };
    rvfcHandle = video.requestVideoFrameCallback(onFrame);
  }

  function frameShown(now, meta) {
    if (!connected()) return;
    const wall = Date.now();
    const perf = performance.now();
    if (report.firstFrameAt === null) {
      report.firstFrameAt = {
        performanceNow: perf,
        dateNow: wall,
        via: meta ? 'requestVideoFrameCallback' : 'playing',
      };
    }
    if (meta) {
      report.lastFrame = {
        mediaTime: meta.mediaTime,
        dateNow: wall,
        performanceNow: perf,
        presentationTime: meta.presentationTime,
        presentedFrames: meta.presentedFrames,
      };
    }
    if (!shownThisConnection) {
      shownThisConnection = true;
      backoffMs = BACKOFF_MIN_MS;
      ended = false;
      setState(STATE.playing);
    }
  }

  function tick() {
    const now = performance.now();
    const t = video.currentTime;
    if (t !== lastTime) {
      lastTime = t;
      lastProgressAt = now;
      if (shownThisConnection && report.state === STATE.stalled) setState(STATE.playing);
    } else if (shownThisConnection && !ended && !video.paused) {
      const stuck = now - lastProgressAt;
      if (stuck > STALL_RECONNECT_MS) {
        setState(STATE.stalled);
        retryAfterError('stalled: no progress for ' + Math.round(stuck / 1000) + ' s');
      } else if (stuck > STALL_SHOW_MS && report.state === STATE.playing) {
        setState(STATE.stalled);
      }
    }
    if (!shownThisConnection && retryTimer === null && !ended &&
        now - connectedAt > FIRST_FRAME_TIMEOUT_MS) {
      retryAfterError('no picture ' + FIRST_FRAME_TIMEOUT_MS / 1000 + ' s after connecting');
    }
    refresh();
  }

  function quality() {
    if (typeof video.getVideoPlaybackQuality === 'function') {
      const q = video.getVideoPlaybackQuality();
      return { decoded: q.totalVideoFrames, dropped: q.droppedVideoFrames };
    }
    return {
      decoded: video.webkitDecodedFrameCount || 0,
      dropped: video.webkitDroppedFrameCount || 0,
    };
  }

  function bufferedAheadMs() {
    const b = video.buffered;
    if (b.length === 0) return null;
    return Math.max(0, Math.round((b.end(b.length - 1) - video.currentTime) * 1000));
  }

  // ---- the relay's view: /streams/<ID>/status ----

  function pollStatus() {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(), STATUS_TIMEOUT_MS);
    fetch(statusUrl, { cache: 'no-store', signal: abort.signal })
      .then((res) => {
        if (res.status === 404) return { live: false };
        if (!res.ok) throw new Error('HTTP ' + res.status);
        return res.json();
      })
      .then((s) => {
        statusReadable = true;
        report.live = s.live === true;
        report.latencyMs = typeof s.latency_ms === 'number' ? s.latency_ms : null;
        report.repaired = typeof s.repaired === 'number' ? s.repaired : null;
        report.lost = typeof s.lost === 'number' ? s.lost : null;
        if (!report.live && !shownThisConnection && !ended) setState(STATE.waiting);
      }, () => {
        statusReadable = false;
        report.live = null;
      })
      .finally(() => {
        clearTimeout(timer);
        setTimeout(pollStatus, STATUS_MS);
      });
  }

  // ---- what the page shows ----

  function setState(s) {
    if (report.state === s) return;
    report.state = s;
    $('state').textContent = s;
  }

  function fail(reason) {
    setState('error: ' + reason);
    // "Can't play type" (Firefox), "not supported" (Chromium, Safari): the
    // codec, most often H.264 in 4:4:4, which only some browsers decode.
    if (/addSourceBuffer|play type|not supported/i.test(reason)) {
      note('This browser cannot decode this stream\'s video or audio format. Browsers ' +
        'play H.264 in 4:2:0 with AAC: the publisher can send that with ffmpeg ' +
        '-c:v libx264 -pix_fmt yuv420p -c:a aac.');
    }
  }

  function recordError(reason) {
    report.errors.push({ at: Date.now(), reason: reason });
    if (report.errors.length > MAX_ERRORS) report.errors.shift();
  }

  function note(text) {
    const el = $('note');
    el.textContent = text;
    el.hidden = false;
  }

  function refresh() {
    const q = quality();
    report.framesDecoded = decodedBefore + q.decoded;
    report.framesDropped = droppedBefore + q.dropped;
    report.currentTime = video.currentTime;
    report.bufferedAheadMs = bufferedAheadMs();
    $('frames-decoded').textContent = String(report.framesDecoded);
    $('frames-dropped').textContent = String(report.framesDropped);
    $('position').textContent = video.currentTime.toFixed(1) + ' s';
    $('repaired').textContent = report.repaired === null ? '–' : String(report.repaired);
    $('lost').textContent = report.lost === null ? '–' : String(report.lost);
    $('latency').textContent = latencyText();
  }

  function latencyText() {
    const relay = report.latencyMs;
    const buffer = report.bufferedAheadMs;
    if (relay === null && buffer === null) return '–';
    if (relay === null) return buffer + ' ms buffered here';
    if (buffer === null) return relay + ' ms to the relay';
    return 'about ' + (relay + buffer) + ' ms (' + relay + ' ms to the relay, ' +
      buffer + ' ms buffered here)';
  }

  function setupUnmute() {
    const button = $('unmute');
    const show = () => {
      button.textContent = video.muted ? 'Unmute' : 'Mute';
    };
    button.addEventListener('click', () => {
      video.muted = !video.muted;
      if (video.paused) play();
      show();
    });
    video.addEventListener('volumechange', show);
    show();
  }
})();
