// The cursors demo: one channel per room, `cursors:<room>`. Who is here, with a name, a
// colour and whether they are typing, is the channel's built-in presence (each page's
// presence state); pointer positions are ephemeral publishes, at most 30 a second: they
// reach the pages there now, are kept nowhere, and are the first thing the server drops
// for a page that reads too slowly. Positions are fractions of the board, so pages of
// different sizes agree.
/* global document, location, URLSearchParams, setTimeout, clearTimeout, performance */
import { connect } from '/hotline.js';

const SEND_EVERY = 1000 / 30;
const TYPING_SHOWN = 3_000;
const COLORS = ['#0f766e', '#b45309', '#7c3aed', '#be123c', '#1d4ed8', '#15803d'];

const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const room = /^[A-Za-z0-9_.-]{1,40}$/.test(params.get('room') ?? '') ? params.get('room') : 'lobby';
const name = (params.get('name') ?? '').trim().slice(0, 24) || `guest-${Math.floor(1000 + Math.random() * 9000)}`;
const me = { name, color: COLORS[Math.floor(Math.random() * COLORS.length)], typing: false };

const client = connect(`${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/ws`);
client.on('state', (state) => ($('state').textContent = state));
const channel = client.channel(`cursors:${room}`);
const board = $('board');
/** client id -> its cursor element. */
const cursors = new Map();

function cursorOf(id) {
  let cursor = cursors.get(id);
  if (cursor === undefined) {
    cursor = document.createElement('div');
    cursor.className = 'cursor';
    cursor.dataset.client = id;
    cursor.append(document.createElement('span'));
    cursor.firstChild.className = 'name';
    cursor.hidden = true;
    board.append(cursor);
    cursors.set(id, cursor);
  }
  return cursor;
}

/** Names, colours and the people list from the live member map; cursors of those gone are removed. */
function showMembers(members) {
  const ids = new Set();
  const people = [];
  for (const member of members) {
    const id = String(member.client);
    const state = member.state ?? {};
    const label = typeof state.name === 'string' ? state.name : 'someone';
    people.push(`${label}${id === channel.presence.clientId ? ' (you)' : ''}${state.typing ? ' — typing…' : ''}`);
    if (id === channel.presence.clientId) continue;
    ids.add(id);
    const cursor = cursorOf(id);
    cursor.style.setProperty('--c', typeof state.color === 'string' ? state.color : '#555');
    cursor.firstChild.textContent = label;
  }
  for (const [id, cursor] of cursors) {
    if (ids.has(id)) continue;
    cursor.remove();
    cursors.delete(id);
  }
  $('people').replaceChildren(...people.sort().map((text) => Object.assign(document.createElement('li'), { textContent: text })));
}

channel.presence.subscribe(showMembers);
// Whose pointer it is comes from the server (`client`, stamped on the message), never from
// the data: a page cannot move another's cursor.
channel.on('ephemeral', (data, { client: from }) => {
  if (typeof data !== 'object' || data === null || typeof from !== 'string' || from === channel.presence.clientId) return;
  if (!channel.presence.get().some((member) => member.client === from)) return;
  const cursor = cursorOf(from);
  cursor.style.left = `${Math.max(0, Math.min(1, Number(data.x))) * 100}%`;
  cursor.style.top = `${Math.max(0, Math.min(1, Number(data.y))) * 100}%`;
  cursor.hidden = false;
});
channel.subscribe().then(() => channel.presence.enter(me)).catch(() => {});

// At most 30 positions a second; the last one of a burst is sent when its turn comes.
let lastSent = 0;
let pending = null;
let timer = null;
function send() {
  timer = null;
  if (pending === null || channel.state !== 'subscribed') return;
  lastSent = performance.now();
  channel.publish(pending, { ephemeral: true }).catch(() => {});
  pending = null;
}
board.addEventListener('pointermove', (event) => {
  const box = board.getBoundingClientRect();
  pending = { x: (event.clientX - box.left) / box.width, y: (event.clientY - box.top) / box.height };
  const wait = SEND_EVERY - (performance.now() - lastSent);
  if (wait <= 0) send();
  else if (timer === null) timer = setTimeout(send, wait);
});

// Typing is presence state: it shows beside the name until a pause.
let typingTimer = null;
$('note').addEventListener('input', () => {
  if (!me.typing) {
    me.typing = true;
    channel.presence.update(me).catch(() => {});
  }
  clearTimeout(typingTimer);
  typingTimer = setTimeout(() => {
    me.typing = false;
    channel.presence.update(me).catch(() => {});
  }, TYPING_SHOWN);
});
