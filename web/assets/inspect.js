// The inspector: renders the snapshots that /inspect/ws sends once a second:
//   { type: 'snapshot', time, previews, connections: [{ id, endpoint, address, protocol, extensions, age, bytesIn, bytesOut }],
//     channels: [{ name, subscribers, rate }], rates: { in, out }, frames: [{ time, connection, endpoint,
//     direction: 'in' | 'out', type: 'text' | 'binary', size, preview }] }
//     api: { calls: [{ time, method, status, code?, duration, preview? }], total },
//     namespaces: [{ pattern, subscribe?, publish?, history?, presenceRead?, presence?, historySize?, historyTtl?, publishRate?, schema }] }
// Each connection also has `user` (null when anonymous) and `transport` ('websocket', or 'sse' for /sse streams and
// HTTP sessions, whose bytes are null: not counted). The API calls are the last ones kept, oldest first.
// The first snapshot carries the frames the server kept; later ones only the new frames.
// `preview` is null unless the server was started with --inspector-previews (messages may hold secrets).
/* global document, WebSocket, setTimeout */
import { clockTime, el, formatAge, formatBytes, wsUrl } from './common.js';

const WINDOW_MS = 60_000;
const MAX_FRAMES = 200;
const SVG = 'http://www.w3.org/2000/svg';

const $ = (id) => document.getElementById(id);
const ui = {
  feed: $('feed-state'),
  updated: $('updated'),
  summary: $('summary'),
  connections: $('connections').tBodies[0],
  connectionCount: $('connection-count'),
  channels: $('channels').tBodies[0],
  channelCount: $('channel-count'),
  chart: $('chart'),
  chartDesc: $('chart-desc'),
  rates: $('rates'),
  frames: $('frames').tBodies[0],
  frameCount: $('frame-count'),
  pause: $('pause'),
  clear: $('clear'),
  filter: $('filter'),
  apiCalls: $('api-calls').tBodies[0],
  apiCount: $('api-count'),
  namespacesPanel: $('namespaces-panel'),
  namespaces: $('namespaces').tBodies[0],
};

/** { time, in, out } for the last minute. */
let samples = [];
/** Frames kept to show, oldest first. */
let frames = [];
let paused = false;

// ───────────────────────── the feed ─────────────────────────

let retries = 0;

function setFeed(state, text = state) {
  ui.feed.dataset.state = state;
  ui.feed.textContent = text;
}

function connectFeed() {
  setFeed('connecting');
  const ws = new WebSocket(wsUrl('/inspect/ws'));
  ws.addEventListener('open', () => {
    retries = 0;
    setFeed('open');
    // The first snapshot brings every frame the server kept again.
    frames = [];
  });
  ws.addEventListener('message', (event) => {
    let snapshot;
    try {
      snapshot = JSON.parse(event.data);
    } catch {
      return;
    }
    if (snapshot?.type === 'snapshot') render(snapshot);
  });
  ws.addEventListener('close', () => {
    const delay = Math.min(10_000, 1_000 * 2 ** retries++);
    setFeed('reconnecting', `disconnected; retrying in ${Math.round(delay / 1000)} s`);
    setTimeout(connectFeed, delay);
  });
}

// ───────────────────────── rendering ─────────────────────────

function cell(text, className) {
  return el('td', className ? { class: className } : {}, text);
}

function empty(columns, text) {
  return el('tr', { class: 'empty' }, el('td', { colspan: columns }, text));
}

function render(snapshot) {
  const now = snapshot.time;
  ui.updated.textContent = clockTime(new Date(now));

  const connections = [...snapshot.connections].sort((a, b) => a.id - b.id);
  ui.connectionCount.textContent = `(${connections.length})`;
  ui.connections.replaceChildren(
    ...(connections.length === 0
      ? [empty(10, 'No connections to /echo, /ws, /sse or /sse/session right now.')]
      : connections.map((c) =>
          el(
            'tr',
            { 'data-id': c.id, 'data-endpoint': c.endpoint },
            cell(`#${c.id}`, 'num'),
            cell(c.endpoint, 'mono'),
            cell(c.address || '?', 'mono'),
            cell(c.user ?? '—', 'mono'),
            cell(c.protocol || '—'),
            cell(c.extensions ? c.extensions.replace(/;\s*/g, ';\n') : '—', 'mono wrap'),
            cell(formatAge(c.age), 'num'),
            cell(c.bytesIn === null ? '—' : formatBytes(c.bytesIn), 'num'),
            cell(c.bytesOut === null ? '—' : formatBytes(c.bytesOut), 'num'),
            cell(c.transport ?? 'websocket'),
          ),
        )),
  );

  const channels = [...snapshot.channels].sort((a, b) => a.name.localeCompare(b.name));
  ui.channelCount.textContent = `(${channels.length})`;
  ui.channels.replaceChildren(
    ...(channels.length === 0
      ? [empty(3, 'No channel has subscribers.')]
      : channels.map((c) =>
          el('tr', { 'data-name': c.name }, cell(c.name, 'mono'), cell(c.subscribers, 'num'), cell(c.rate.toFixed(1), 'num')),
        )),
  );

  const summary = `${connections.length} connection${connections.length === 1 ? '' : 's'}, ${channels.length} channel${channels.length === 1 ? '' : 's'}`;
  // Announced when it changes, not every second.
  if (ui.summary.textContent !== summary) ui.summary.textContent = summary;

  samples.push({ time: now, in: snapshot.rates.in, out: snapshot.rates.out });
  samples = samples.filter((s) => now - s.time <= WINDOW_MS);
  drawChart(now);
  ui.rates.textContent = `now: in ${snapshot.rates.in.toFixed(1)}/s (to the server) · out ${snapshot.rates.out.toFixed(1)}/s (from the server)`;

  renderApi(snapshot.api ?? { calls: [], total: 0 }, snapshot.previews);
  renderNamespaces(snapshot.namespaces ?? []);

  frames.push(...snapshot.frames);
  if (frames.length > MAX_FRAMES) frames.splice(0, frames.length - MAX_FRAMES);
  if (!paused) showFrames();
}

function renderApi(api, previews) {
  ui.apiCount.textContent = `(${api.total} in all)`;
  const calls = [...api.calls].reverse();
  ui.apiCalls.replaceChildren(
    ...(calls.length === 0
      ? [empty(6, 'No API calls yet.')]
      : calls.map((c) =>
          el(
            'tr',
            { 'data-method': c.method, 'data-status': c.status },
            cell(clockTime(new Date(c.time))),
            cell(c.method, 'mono'),
            cell(c.status, 'num'),
            cell(c.code ?? '—', 'mono'),
            cell(c.duration.toFixed(1), 'num'),
            cell(previews ? (c.preview ?? '') : 'hidden', 'mono wrap'),
          ),
        )),
  );
}

function renderNamespaces(namespaces) {
  ui.namespacesPanel.hidden = namespaces.length === 0;
  ui.namespaces.replaceChildren(
    ...namespaces.map((n) => {
      const other = [
        n.presence === false && 'presence off',
        n.historySize !== undefined && `history ${n.historySize}`,
        n.historyTtl !== undefined && `ttl ${n.historyTtl} ms`,
        n.publishRate !== undefined && `rate ${n.publishRate}`,
        n.schema && 'schema',
      ].filter(Boolean);
      return el(
        'tr',
        { 'data-pattern': n.pattern },
        cell(n.pattern, 'mono'),
        cell(n.subscribe ?? 'authenticated'),
        cell(n.publish ?? 'server'),
        cell(n.history ?? n.subscribe ?? 'authenticated'),
        cell(n.presenceRead ?? n.subscribe ?? 'authenticated'),
        cell(other.join(', ') || '—'),
      );
    }),
  );
}

function showFrames() {
  const query = ui.filter.value.trim().toLowerCase();
  const shown = frames.filter(
    (f) =>
      query === '' ||
      (f.preview ?? '').toLowerCase().includes(query) ||
      f.endpoint.toLowerCase().includes(query) ||
      `#${f.connection}` === query ||
      String(f.connection) === query,
  );
  ui.frameCount.textContent = `${shown.length} of ${frames.length} kept`;
  // Newest first.
  const rows = shown
    .slice(-100)
    .reverse()
    .map((f) =>
      el(
        'tr',
        { 'data-connection': f.connection, 'data-direction': f.direction },
        cell(clockTime(new Date(f.time)), 'mono'),
        cell(`#${f.connection}`, 'num'),
        cell(f.endpoint, 'mono'),
        el(
          'td',
          { class: f.direction === 'in' ? 'dir-in' : 'dir-out', title: f.direction === 'in' ? 'client to server' : 'server to client' },
          f.direction === 'in' ? '→ in' : '← out',
        ),
        cell(f.type),
        cell(formatBytes(f.size), 'num'),
        f.preview === null
          ? el('td', { class: 'preview muted', title: 'start hotline serve with --inspector-previews to see contents' }, 'hidden')
          : el('td', { class: 'preview', title: f.preview }, f.preview),
      ),
    );
  ui.frames.replaceChildren(...(rows.length === 0 ? [empty(7, frames.length === 0 ? 'No frames yet.' : 'No frame matches the filter.')] : rows));
}

function svg(tag, attributes, text) {
  const node = document.createElementNS(SVG, tag);
  for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, String(value));
  if (text !== undefined) node.textContent = text;
  return node;
}

/** A round upper bound for the y axis: 1, 2, 5, 10, 20, 50, … */
function niceMax(value) {
  let step = 1;
  for (;;) {
    for (const m of [1, 2, 5]) if (m * step >= value) return m * step;
    step *= 10;
  }
}

function drawChart(now) {
  const [width, height] = [360, 200];
  const [left, right, top, bottom] = [40, 10, 10, 22];
  const plotWidth = width - left - right;
  const plotHeight = height - top - bottom;
  const max = niceMax(Math.max(1, ...samples.map((s) => Math.max(s.in, s.out))));
  const x = (time) => left + plotWidth * (1 - (now - time) / WINDOW_MS);
  const y = (value) => top + plotHeight * (1 - value / max);

  const nodes = [];
  for (const fraction of [0, 0.5, 1]) {
    const value = max * fraction;
    nodes.push(svg('line', { class: 'grid', x1: left, x2: width - right, y1: y(value), y2: y(value) }));
    nodes.push(
      svg('text', { class: 'axis-label', x: left - 6, y: y(value) + 4, 'text-anchor': 'end' }, Number.isInteger(value) ? value : value.toFixed(1)),
    );
  }
  for (const [seconds, anchor] of [
    [60, 'start'],
    [30, 'middle'],
    [0, 'end'],
  ]) {
    nodes.push(
      svg('text', { class: 'axis-label', x: x(now - seconds * 1000), y: height - 6, 'text-anchor': anchor }, seconds === 0 ? 'now' : `−${seconds} s`),
    );
  }
  for (const key of ['in', 'out']) {
    const points = samples.map((s) => `${x(s.time).toFixed(1)},${y(s[key]).toFixed(1)}`).join(' ');
    nodes.push(svg('polyline', { class: `line-${key}`, points }));
  }
  const title = ui.chart.querySelector('title');
  const desc = ui.chart.querySelector('desc');
  ui.chart.replaceChildren(title, desc, ...nodes);

  const last = samples[samples.length - 1];
  const peak = (key) => Math.max(...samples.map((s) => s[key]));
  ui.chartDesc.textContent = last
    ? `Now ${last.in.toFixed(1)} in and ${last.out.toFixed(1)} out per second; peaks over the last minute ${peak('in').toFixed(1)} in and ${peak('out').toFixed(1)} out.`
    : 'No data yet.';
}

// ───────────────────────── controls ─────────────────────────

ui.pause.addEventListener('click', () => {
  paused = !paused;
  ui.pause.setAttribute('aria-pressed', String(paused));
  if (!paused) showFrames();
});
ui.clear.addEventListener('click', () => {
  frames = [];
  showFrames();
});
ui.filter.addEventListener('input', () => showFrames());

showFrames();
connectFeed();
