// The echo demo: the browser's own WebSocket against /echo, with a log of every message.
/* global document, WebSocket, performance */
import { atBottom, clockTime, el, wsUrl } from './common.js';

const STATES = ['CONNECTING', 'OPEN', 'CLOSING', 'CLOSED'];
const DIRECTIONS = {
  sent: '→ sent',
  received: '← received',
  system: '• system',
  error: '✕ error',
};

const $ = (id) => document.getElementById(id);
const url = $('url');
const connectForm = $('connect-form');
const connectButton = $('connect');
const disconnectButton = $('disconnect');
const sendForm = $('send-form');
const message = $('message');
const sendButton = $('send');
const stateBadge = $('state');
const extensions = $('extensions');
const protocol = $('protocol');
const closeInfo = $('close-info');
const log = $('log');
const hint = $('message-hint');

url.value = wsUrl('/echo');

/** @type {WebSocket | null} */
let ws = null;
/** When each message still waiting for its echo was sent (the server echoes in order). */
let inFlight = [];

function line(kind, text, extra) {
  const follow = atBottom(log);
  const item = el(
    'li',
    { class: kind },
    el('span', { class: 'time' }, clockTime()),
    el('span', { class: 'dir' }, DIRECTIONS[kind]),
    el('span', { class: 'text' }, text, extra ? el('span', { class: 'extra muted' }, ` ${extra}`) : null),
  );
  log.append(item);
  if (follow) log.scrollTop = log.scrollHeight;
}

function describe(data) {
  if (typeof data === 'string') return data;
  const bytes = new Uint8Array(data);
  const hex = Array.from(bytes.subarray(0, 32), (b) => b.toString(16).padStart(2, '0')).join(' ');
  return `[binary, ${bytes.length} bytes] ${hex}${bytes.length > 32 ? ' …' : ''}`;
}

function showState() {
  const state = ws === null ? 'CLOSED' : STATES[ws.readyState];
  stateBadge.textContent = state;
  stateBadge.dataset.state = state;
  const open = state === 'OPEN';
  connectButton.disabled = state === 'CONNECTING' || state === 'OPEN' || state === 'CLOSING';
  disconnectButton.disabled = !(state === 'OPEN' || state === 'CONNECTING');
  url.disabled = connectButton.disabled;
  message.disabled = !open;
  sendButton.disabled = !open;
  hint.textContent = open ? 'Enter sends.' : 'Enter sends. Connect first.';
}

function connect() {
  if (ws !== null && ws.readyState !== WebSocket.CLOSED) return;
  let socket;
  try {
    socket = new WebSocket(url.value.trim());
  } catch (error) {
    line('error', `cannot connect: ${error.message}`);
    return;
  }
  socket.binaryType = 'arraybuffer';
  ws = socket;
  inFlight = [];
  line('system', `connecting to ${socket.url}`);
  socket.addEventListener('open', () => {
    if (ws !== socket) return;
    extensions.textContent = socket.extensions || 'none';
    protocol.textContent = socket.protocol || 'none';
    line('system', `open${socket.extensions ? `; extensions: ${socket.extensions}` : '; no extensions'}`);
    showState();
    message.focus();
  });
  socket.addEventListener('message', (event) => {
    if (ws !== socket) return;
    const sentAt = inFlight.shift();
    const rtt = sentAt === undefined ? '' : `(round trip ${Math.max(0, Math.round(performance.now() - sentAt))} ms)`;
    line('received', describe(event.data), rtt);
  });
  socket.addEventListener('error', () => {
    if (ws !== socket) return;
    line('error', 'the connection failed (the browser gives no details; see the close code)');
  });
  socket.addEventListener('close', (event) => {
    if (ws !== socket) return;
    const reason = event.reason ? `reason "${event.reason}"` : 'no reason';
    const summary = `code ${event.code}, ${reason}, ${event.wasClean ? 'clean' : 'not clean'}`;
    closeInfo.textContent = summary;
    line(event.wasClean ? 'system' : 'error', `closed: ${summary}`);
    showState();
    if (document.activeElement === null || document.activeElement === document.body || document.activeElement.disabled) {
      connectButton.focus();
    }
  });
  showState();
}

function disconnect() {
  if (ws === null) return;
  if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) {
    line('system', 'closing with code 1000');
    ws.close(1000, 'bye from the echo demo');
  }
  showState();
}

function send() {
  if (ws === null || ws.readyState !== WebSocket.OPEN) return;
  const text = message.value;
  ws.send(text);
  inFlight.push(performance.now());
  line('sent', text);
  message.value = '';
  message.focus();
}

connectForm.addEventListener('submit', (event) => {
  event.preventDefault();
  connect();
});
disconnectButton.addEventListener('click', disconnect);
sendForm.addEventListener('submit', (event) => {
  event.preventDefault();
  send();
});
$('clear').addEventListener('click', () => log.replaceChildren());

showState();
