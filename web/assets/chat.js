// The chat demo, on the hotline.v1 channels through the SDK served at /hotline.js.
//
// One room is one channel, chat:<room>:
//   its messages     { id, nick, text, time }: history on join, recovery after a drop
//   its presence     every subscriber is a member; each page enters its nick as presence
//                    state, and "Here now" is the SDK's live member map (channel.presence),
//                    kept right across reconnects by the SDK and the server
//   ephemeral        { type: 'typing', id, nick }, at most every 2 s while typing: to the
//                    pages there now, kept nowhere, never replayed
//
// Reconnecting. The SDK reconnects by itself and resubscribes every channel from the last
// message seen. Its 'subscribed' event says whether the missed messages were replayed
// (recovered: true; they follow as ordinary messages) or could not be (recovered: false:
// the server lost the history, as the memory engine does when it restarts), in which case
// the page reloads the room's history.
/* global document, location, history, sessionStorage, crypto, setInterval, URL, URLSearchParams */
import { connect } from '/hotline.js';
import { atBottom, el, shortTime, wsUrl } from './common.js';

const TYPING_EVERY = 2_000;
const TYPING_SHOWN = 4_000;
const HISTORY_LIMIT = 50;
const ROOM_NAME = /^[A-Za-z0-9_.-]{1,40}$/;
const MAX_NICK = 24;

const $ = (id) => document.getElementById(id);
const ui = {
  state: $('state'),
  nickForm: $('nick-form'),
  nick: $('nick'),
  roomForm: $('room-form'),
  room: $('room'),
  roomError: $('room-error'),
  roomName: $('room-name'),
  channels: $('channels'),
  people: $('people'),
  members: $('members'),
  membersNote: $('members-note'),
  messages: $('messages'),
  typing: $('typing'),
  composer: $('composer'),
  text: $('text'),
  composerHint: $('composer-hint'),
};

const params = new URLSearchParams(location.search);
const me = {
  /** This page's id, so its own typing and presence messages can be told apart. */
  id: crypto.randomUUID().slice(0, 8),
  nick: cleanNick(params.get('nick') ?? sessionStorage.getItem('hotline.nick') ?? '') || `guest-${Math.floor(1000 + Math.random() * 9000)}`,
};
ui.nick.value = me.nick;

function cleanNick(nick) {
  return String(nick).trim().replace(/\s+/g, ' ').slice(0, MAX_NICK);
}

// ───────────────────────── the connection ─────────────────────────

const client = connect(wsUrl('/ws'), { reconnect: { initial: 500, max: 5_000 } });
let everOpen = false;
/** Whether the current connection opened (its close is worth a line in the log). */
let connected = false;

function showState(state) {
  ui.state.textContent = state;
  ui.state.dataset.state = state;
  ui.composerHint.textContent =
    state === 'open' ? 'Enter sends.' : 'Enter sends. Offline: messages are sent when the connection is back.';
}

client.on('state', (state) => {
  showState(state);
  if (state === 'open') {
    notice(everOpen ? 'connection: open again' : `connection: open (${client.url})`);
    everOpen = true;
    connected = true;
  } else if (state === 'reconnecting') {
    notice('connection: reconnecting…', 'error');
  } else if (state === 'closed') {
    notice('connection: closed for good; reload the page to start again', 'error');
  }
});
client.on('close', ({ code, reason, willRetry }) => {
  // Only the end of an open connection is news: failed attempts while reconnecting are not.
  if (!connected && willRetry) return;
  connected = false;
  notice(`connection lost: code ${code}${reason ? ` (${reason})` : ''}${willRetry ? '' : ', not retrying'}`, 'error');
});
showState(client.state);

// ───────────────────────── the log ─────────────────────────

function append(item) {
  const follow = atBottom(ui.messages);
  ui.messages.append(item);
  if (follow) ui.messages.scrollTop = ui.messages.scrollHeight;
}

/** A line about what happened (joined, reconnected, history reloaded, …). */
function notice(text, kind = 'info') {
  append(el('li', { class: `notice${kind === 'error' ? ' error' : ''}` }, `${shortTime()} · ${text}`));
}

function isChatMessage(data) {
  return typeof data === 'object' && data !== null && typeof data.text === 'string';
}

/** Shows a chat message once: history and the live subscription can both bring it. */
function showMessage(r, data, epoch, offset) {
  const key = `${epoch}:${offset}`;
  if (r.shown.has(key)) return;
  r.shown.add(key);
  if (!isChatMessage(data)) return;
  const nick = cleanNick(data.nick ?? '') || 'someone';
  const when = Number.isFinite(data.time) ? new Date(data.time) : new Date();
  if (typeof data.id === 'string' && r.typers.delete(data.id)) showTyping(r);
  const mine = data.id === me.id;
  append(
    el(
      'li',
      { class: `msg${mine ? ' mine' : ''}`, 'data-offset': offset },
      el(
        'header',
        {},
        el('span', { class: 'nick' }, nick),
        mine ? el('span', { class: 'visually-hidden' }, '(you)') : null,
        el('time', { datetime: when.toISOString() }, shortTime(when)),
      ),
      el('p', {}, data.text),
    ),
  );
}

// ───────────────────────── rooms ─────────────────────────

/** @type {ReturnType<typeof openRoom> | null} */
let room = null;

function openRoom(name) {
  return {
    name,
    chat: client.channel(`chat:${name}`),
    /** Removes this room's listeners. */
    off: [],
    subscribedBefore: false,
    /** Where the room's chat stream stands (the last message seen). */
    epoch: '',
    offset: 0,
    /** Live messages that arrive while history loads, shown after it. */
    loading: 0,
    buffer: [],
    shown: new Set(),
    /** id → { nick, until } from the ephemeral typing messages. */
    typers: new Map(),
    lastTyping: 0,
  };
}

function join(name) {
  if (room !== null && room.name === name) return;
  if (room !== null) leave(room);
  const r = openRoom(name);
  room = r;
  ui.roomName.textContent = name;
  ui.room.value = name;
  ui.channels.textContent = `Channel: chat:${name} (messages, presence, ephemeral typing)`;
  document.title = `${name} · Chat demo · hotline`;
  ui.messages.replaceChildren();
  ui.typing.textContent = '';
  showPeople(r);
  const url = new URL(location.href);
  url.searchParams.set('room', name);
  history.replaceState(null, '', url);
  notice(`joined room ${name} as ${me.nick}`);

  r.off.push(
    r.chat.on('message', (data, meta) => {
      r.epoch = meta.epoch;
      r.offset = meta.offset;
      if (r.loading > 0) r.buffer.push({ data, meta });
      else showMessage(r, data, meta.epoch, meta.offset);
    }),
    r.chat.on('subscribed', (event) => subscribed(r, event)),
    r.chat.presence.subscribe(() => showPeople(r)),
    r.chat.on('error', (error) => notice(`the room's subscription ended: ${error.message}`, 'error')),
    r.chat.on('ephemeral', (data) => {
      if (typeof data !== 'object' || data === null || data.type !== 'typing' || data.id === me.id) return;
      r.typers.set(String(data.id), { nick: cleanNick(data.nick ?? '') || 'someone', until: Date.now() + TYPING_SHOWN });
      showTyping(r);
    }),
  );
  // The nick is this page's presence state: the SDK enters it again after every reconnect.
  r.chat.presence.enter({ id: me.id, nick: me.nick }).catch(() => {});
  r.chat.subscribe().catch((error) => notice(`could not join ${name}: ${error.message}`, 'error'));
}

function leave(r) {
  for (const off of r.off) off();
  r.off = [];
  // Unsubscribing leaves the room's presence at once, for everyone.
  r.chat.unsubscribe();
}

/** After every (re)subscription of the chat channel. */
function subscribed(r, event) {
  if (room !== r) return;
  if (!r.subscribedBefore) {
    r.subscribedBefore = true;
    r.epoch = event.epoch;
    r.offset = event.offset;
    void loadHistory(r, 'join');
  } else if (event.recovered) {
    // The missed messages follow this event, as ordinary messages.
    const missed = Math.max(0, event.offset - r.offset);
    notice(`reconnected: recovered ${missed} missed message${missed === 1 ? '' : 's'}`);
  } else {
    r.epoch = event.epoch;
    r.offset = event.offset;
    void loadHistory(r, 'reload');
  }
}

/**
 * Shows the room's recent history before the live messages that arrive meanwhile, each
 * message once (a live one may also be in the history).
 */
async function loadHistory(r, why) {
  let epoch = r.epoch;
  r.loading++;
  let messages = [];
  let failed = null;
  try {
    // The history's own epoch: offsets mean something only within it.
    ({ epoch, messages } = await r.chat.history({ limit: HISTORY_LIMIT }));
  } catch (error) {
    failed = error;
  }
  r.loading--;
  if (room !== r) return;
  if (why === 'reload') {
    for (const item of ui.messages.querySelectorAll('.msg:not(.stale)')) item.classList.add('stale');
    notice(
      failed === null
        ? `reconnected: history lost, reloaded (${messages.length} message${messages.length === 1 ? '' : 's'} since)`
        : `reconnected: history lost, and reloading it failed: ${failed.message}`,
      'error',
    );
  } else if (failed !== null) {
    notice(`could not load the history: ${failed.message}`, 'error');
  } else {
    notice(messages.length === 0 ? 'no earlier messages' : `${messages.length} earlier message${messages.length === 1 ? '' : 's'}:`);
  }
  for (const message of messages) showMessage(r, message.data, epoch, message.offset);
  if (r.loading === 0) {
    const buffered = r.buffer;
    r.buffer = [];
    for (const { data, meta } of buffered) showMessage(r, data, meta.epoch, meta.offset);
  }
}

// ───────────────────────── presence ─────────────────────────

/** "Here now": the live member map, each member's nick from its presence state. */
function showPeople(r) {
  if (room !== r) return;
  const self = r.chat.presence.clientId;
  const others = r.chat.presence
    .get()
    .filter((member) => member.client !== self)
    .map((member) => ({ id: String(member.client), nick: cleanNick(String(member.state?.nick ?? '')) || 'someone' }))
    .sort((a, b) => a.nick.localeCompare(b.nick) || a.id.localeCompare(b.id));
  ui.people.replaceChildren(
    el('li', { 'data-id': self ?? me.id }, el('span', { class: 'nick' }, me.nick), el('span', { class: 'you' }, '(you)')),
    ...others.map((p) => el('li', { 'data-id': p.id }, el('span', { class: 'nick' }, p.nick))),
  );
  const identified = r.chat.presence.get().filter((member) => member.id !== undefined);
  ui.members.replaceChildren(...identified.map((m) => el('li', {}, String(m.name ?? m.id))));
  ui.membersNote.textContent =
    identified.length > 0
      ? 'Members the server authenticated (their identity from authentication).'
      : 'None with an identity: hotline serve authenticates nobody here. Everyone subscribed is still present, listed above from channel.presence.';
}

function showTyping(r) {
  const now = Date.now();
  const names = [...r.typers.values()].filter((t) => t.until > now).map((t) => t.nick);
  ui.typing.textContent =
    names.length === 0
      ? ''
      : names.length === 1
        ? `${names[0]} is typing…`
        : names.length === 2
          ? `${names[0]} and ${names[1]} are typing…`
          : `${names.length} people are typing…`;
}

// Once a second: forget who stopped typing.
setInterval(() => {
  const r = room;
  if (r === null) return;
  const now = Date.now();
  let typersChanged = false;
  for (const [id, t] of r.typers) {
    if (t.until <= now) {
      r.typers.delete(id);
      typersChanged = true;
    }
  }
  if (typersChanged) showTyping(r);
}, 1_000);

// ───────────────────────── the forms ─────────────────────────

ui.nickForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const nick = cleanNick(ui.nick.value);
  if (nick === '' || nick === me.nick) {
    ui.nick.value = me.nick;
    return;
  }
  const before = me.nick;
  me.nick = nick;
  ui.nick.value = nick;
  sessionStorage.setItem('hotline.nick', nick);
  notice(`you are now ${nick} (were ${before})`);
  if (room !== null) {
    showPeople(room);
    room.chat.presence.update({ id: me.id, nick }).catch(() => {});
  }
});

ui.roomForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const name = ui.room.value.trim();
  if (!ROOM_NAME.test(name)) {
    ui.room.setAttribute('aria-invalid', 'true');
    ui.roomError.textContent = 'A room name has 1 to 40 letters, digits, -, _ or . (no spaces).';
    ui.room.focus();
    return;
  }
  ui.room.removeAttribute('aria-invalid');
  ui.roomError.textContent = '';
  join(name);
  ui.text.focus();
});

ui.composer.addEventListener('submit', (event) => {
  event.preventDefault();
  const r = room;
  const text = ui.text.value.trim();
  if (r === null || text === '') return;
  ui.text.value = '';
  r.lastTyping = 0;
  // While reconnecting, the SDK queues the publish and sends it once the connection is back.
  r.chat.publish({ id: me.id, nick: me.nick, text, time: Date.now() }).catch((error) => notice(`not sent (${text}): ${error.message}`, 'error'));
});

ui.text.addEventListener('input', () => {
  const r = room;
  if (r === null || ui.text.value.trim() === '' || client.state !== 'open') return;
  const now = Date.now();
  if (now - r.lastTyping < TYPING_EVERY) return;
  r.lastTyping = now;
  r.chat.publish({ type: 'typing', id: me.id, nick: me.nick }, { ephemeral: true }).catch(() => {});
});

const wanted = (params.get('room') ?? '').trim();
join(ROOM_NAME.test(wanted) ? wanted : 'lobby');
