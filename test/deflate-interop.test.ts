// permessage-deflate (RFC 7692) between hotline and the `ws` package, in both directions:
// hotline's server with `ws` clients, and hotline's Node client with `ws` servers, over a
// grid of negotiation options. Every connection goes through a recording TCP proxy, so
// besides the messages each side delivers, the tests check the bytes on the wire: the
// Sec-WebSocket-Extensions both sides saw, RSV1 on exactly the messages that were meant to
// be compressed (never on control or continuation frames), compressed sizes that show the
// compression (and context takeover) really happened, and the close handshake.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { createServer as createNetServer } from 'node:net';
import { WebSocketServer as WsServer, type ClientOptions as WsClientOptions, type PerMessageDeflateOptions as WsDeflateOptions } from 'ws';
import { serve, type RunningServer } from '../src/server/serve.js';
import type { ConnectionHandlers } from '../src/node/connection.js';
import type { ServerDeflateOptions } from '../src/node/server.js';
import { WebSocket as HotlineClient, type ClientDeflateOptions } from '../src/node/client.js';
import { RecordingProxy, type ProxiedConnection } from './support/deflate-proxy.js';
import { HotlinePeer, WsPeer, type Peer, type Received } from './support/deflate-peers.js';
import { Op, deflateForWire, inflateFromWire, type WireMessage } from './support/deflate-wire.js';

const KiB = 1024;
const MiB = 1024 * 1024;
/** Both servers and hotline's client take messages up to 2 MiB: 1 MiB of random bytes deflates to a little over 1 MiB. */
const MAX_PAYLOAD = 2 * MiB;
const HOTLINE_THRESHOLD = 1024;
const WS_THRESHOLD = 1024;

// ───────────────────────────── messages ─────────────────────────────

const COMPRESSIBLE = (() => {
  const row = (i: number): string => `{"id":${i % 100},"user":"ada","text":"the quick brown fox jumps over the lazy dog"},`;
  let text = '[';
  for (let i = 0; text.length < MiB - 200; i++) text += row(i);
  return (text + '"end"]').padEnd(MiB, ' ');
})();
const RANDOM = randomBytes(MiB);

/** Base64 text from a hash chain: incompressible on its own, the same on every run. */
function pseudoRandomText(length: number, seed: number): string {
  let text = '';
  let block = Buffer.from(String(seed));
  while (text.length < length) {
    block = createHash('sha256').update(block).digest();
    text += block.toString('base64').replace(/=+$/, '');
  }
  return text.slice(0, length);
}

/** Incompressible on its own, but the same in every message of a run: only history helps. */
const RUN_BASE = pseudoRandomText(400, 0);

/** The run of 50: alternately ~450 B and ~1.3 KiB, sharing RUN_BASE, so context takeover pays. */
function runMessage(i: number): string {
  const body = i % 2 === 0 ? RUN_BASE : RUN_BASE.repeat(3);
  return JSON.stringify({ seq: i, body });
}
const RUN_SMALL = Buffer.byteLength(runMessage(0));

const bytesOf = (data: string | Buffer): Buffer => (typeof data === 'string' ? Buffer.from(data) : data);

function assertReceived(got: Received, sent: string | Buffer, label: string): void {
  assert.equal(got.binary, typeof sent !== 'string', `${label}: binary flag`);
  const expected = bytesOf(sent);
  assert.equal(got.data.length, expected.length, `${label}: length`);
  assert.ok(got.data.equals(expected), `${label}: the bytes differ`);
}

// ───────────────────────────── negotiated parameters ─────────────────────────────

interface Negotiated {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  serverMaxWindowBits: number | undefined;
  clientMaxWindowBits: number | undefined;
}

/** Reads a permessage-deflate response element (independently of src/). */
function parseAnswer(header: string): Negotiated {
  const [name, ...params] = header.split(';').map((part) => part.trim());
  assert.equal(name, 'permessage-deflate', `answer ${header}`);
  const out: Negotiated = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  for (const param of params) {
    const [key, value] = param.split('=');
    if (key === 'server_no_context_takeover') out.serverNoContextTakeover = true;
    else if (key === 'client_no_context_takeover') out.clientNoContextTakeover = true;
    else if (key === 'server_max_window_bits') out.serverMaxWindowBits = Number(value);
    else if (key === 'client_max_window_bits') out.clientMaxWindowBits = Number(value);
    else assert.fail(`unexpected parameter ${param} in ${header}`);
  }
  return out;
}

/** What a client offers, as the tests describe it. */
interface Offer {
  serverNoContextTakeover?: true;
  clientNoContextTakeover?: true;
  serverMaxWindowBits?: number;
  /** true: offered without a value. */
  clientMaxWindowBits?: number | true;
}

function formatOffer(offer: Offer): string {
  let text = 'permessage-deflate';
  if (offer.serverNoContextTakeover) text += '; server_no_context_takeover';
  if (offer.clientNoContextTakeover) text += '; client_no_context_takeover';
  if (offer.serverMaxWindowBits !== undefined) text += `; server_max_window_bits=${offer.serverMaxWindowBits}`;
  if (offer.clientMaxWindowBits === true) text += '; client_max_window_bits';
  else if (offer.clientMaxWindowBits !== undefined) text += `; client_max_window_bits=${offer.clientMaxWindowBits}`;
  return text;
}

/**
 * hotline's documented answer to an offer (server.ts, permessage-deflate.ts): it always
 * accepts a valid offer; answers server_no_context_takeover when asked or by default;
 * client_no_context_takeover only when offered and enabled; the smaller of requested and
 * allowed server window, whenever either is set; and client_max_window_bits only when
 * offered, lowered to its option.
 */
function hotlineAnswer(options: ServerDeflateOptions, offer: Offer): string {
  let text = 'permessage-deflate';
  if (offer.serverNoContextTakeover || options.serverNoContextTakeover !== false) text += '; server_no_context_takeover';
  if (offer.clientNoContextTakeover && options.clientNoContextTakeover === true) text += '; client_no_context_takeover';
  const serverCap = options.serverMaxWindowBits ?? 15;
  if (offer.serverMaxWindowBits !== undefined || serverCap < 15) {
    text += `; server_max_window_bits=${Math.min(offer.serverMaxWindowBits ?? 15, serverCap)}`;
  }
  if (offer.clientMaxWindowBits !== undefined) {
    const bits = Math.min(offer.clientMaxWindowBits === true ? 15 : offer.clientMaxWindowBits, options.clientMaxWindowBits ?? 15);
    if (offer.clientMaxWindowBits !== true || bits < 15) text += `; client_max_window_bits=${bits}`;
  }
  return text;
}

// ───────────────────────────── the battery every connection runs ─────────────────────────────

/** How each side of one connection compresses, from what was negotiated. */
interface Rules {
  clientCompresses(size: number): boolean;
  serverCompresses(size: number, plain: boolean): boolean;
  /** Window bits each side compresses with, and whether it keeps its context. */
  clientBits: number;
  serverBits: number;
  clientTakeover: boolean;
  serverTakeover: boolean;
}

interface Sent {
  label: string;
  data: Buffer;
  fragments: number;
}
interface Delivered {
  label: string;
  data: Buffer;
  plain: boolean;
}

interface Log {
  /** Client to server, in order. */
  client: Sent[];
  /** Server to client, in order, as delivered. */
  server: Delivered[];
}

/** One message out and its echo back, both logged. */
async function echo(peer: Peer, log: Log, label: string, data: string | Buffer): Promise<void> {
  peer.send(data);
  log.client.push({ label, data: bytesOf(data), fragments: 1 });
  const got = await peer.next();
  assertReceived(got, data, label);
  log.server.push({ label: `echo of ${label}`, data: got.data, plain: false });
}

/** A command to the server's echo handler; resolves with its text reply (if any). */
async function command(peer: Peer, log: Log, text: string, replies: 'reply' | 'plain reply' | 'none'): Promise<string | undefined> {
  peer.send(text);
  log.client.push({ label: text, data: Buffer.from(text), fragments: 1 });
  if (replies === 'none') return undefined;
  const got = await peer.next();
  assert.equal(got.binary, false, `reply to ${text}`);
  log.server.push({ label: `reply to ${text}`, data: got.data, plain: replies === 'plain reply' });
  return got.data.toString();
}

/**
 * Everything one connection exchanges: small, empty and 1 MiB messages of both kinds, a
 * burst of 50, a fragmented compressed message (ws only), a message sent with compression
 * off, pings both ways, then the closing handshake. Returns the log to check the wire with.
 */
async function battery(peer: Peer, log: Log): Promise<void> {
  await echo(peer, log, 'small text', 'héllo wörld 😀');
  await echo(peer, log, 'small binary', Buffer.from([0, 1, 2, 253, 254, 255]));
  await echo(peer, log, 'empty text', '');
  await echo(peer, log, 'empty binary', Buffer.alloc(0));
  await echo(peer, log, '1 MiB compressible text', COMPRESSIBLE);
  await echo(peer, log, '1 MiB random binary', RANDOM);

  const run = Array.from({ length: 50 }, (_, i) => runMessage(i));
  for (const [i, text] of run.entries()) {
    peer.send(text);
    log.client.push({ label: `run ${i}`, data: Buffer.from(text), fragments: 1 });
  }
  for (const [i, text] of run.entries()) {
    const got = await peer.next();
    assertReceived(got, text, `run ${i}`);
    log.server.push({ label: `echo of run ${i}`, data: got.data, plain: false });
  }

  if (peer instanceof WsPeer) {
    // A compressed message in three frames: ws deflates each piece with a sync flush and
    // sets RSV1 on the first frame only.
    const pieces = ['a'.repeat(2000), 'b'.repeat(2000), '{"end":true}'.repeat(170)];
    peer.send(pieces[0]!, { fin: false });
    peer.send(pieces[1]!, { fin: false });
    peer.send(pieces[2]!, { fin: true });
    const whole = pieces.join('');
    log.client.push({ label: 'fragmented text', data: Buffer.from(whole), fragments: 3 });
    const got = await peer.next();
    assertReceived(got, whole, 'fragmented text');
    log.server.push({ label: 'echo of fragmented text', data: got.data, plain: false });
  }

  assert.equal(await command(peer, log, '!plain 4096', 'plain reply'), 'p'.repeat(4096));
  // The server pings; the client's automatic pong goes out before its next message.
  await command(peer, log, '!ping', 'none');
  await echo(peer, log, 'after the ping', 'still here');
  if (peer instanceof WsPeer) assert.deepEqual(peer.pings.map(String), ['server ping']);
  await peer.pingPong('client ping');
  await echo(peer, log, 'after the pong', 'and here');
  assert.equal(await peer.close(), 1000);
}

/** Checks the recorded wire against the log and the negotiated rules. */
async function checkWire(wire: ProxiedConnection, log: Log, rules: Rules): Promise<void> {
  await wire.closed;
  for (const [name, direction] of [['client to server', wire.toServer], ['server to client', wire.toClient]] as const) {
    for (const frame of direction.frames) {
      assert.equal(frame.rsv2 || frame.rsv3, false, `${name}: RSV2/RSV3 set`);
      if (frame.opcode >= 0x8) assert.equal(frame.rsv1, false, `${name}: RSV1 on a control frame (opcode ${frame.opcode})`);
      if (frame.opcode === Op.Continuation) assert.equal(frame.rsv1, false, `${name}: RSV1 on a continuation frame`);
    }
  }
  const controls = (frames: typeof wire.toServer.frames): number[] => frames.filter((f) => f.opcode >= 0x8).map((f) => f.opcode);
  assert.deepEqual(controls(wire.toClient.frames), [Op.Ping, Op.Pong, Op.Close], 'server to client: ping, pong, close');
  assert.deepEqual(controls(wire.toServer.frames), [Op.Pong, Op.Ping, Op.Close], 'client to server: pong, ping, close');

  const check = (
    name: string,
    messages: WireMessage[],
    logged: Array<{ label: string; data: Buffer; fragments?: number }>,
    compresses: (entry: { data: Buffer; label: string }) => boolean,
    bits: number,
    takeover: boolean,
  ): void => {
    assert.equal(messages.length, logged.length, `${name}: message count`);
    for (const [i, message] of messages.entries()) {
      const entry = logged[i]!;
      const size = entry.data.length;
      const expected = compresses(entry);
      assert.equal(message.rsv1, expected, `${name}: ${entry.label} (${size} B) ${expected ? 'should' : 'should not'} be compressed`);
      if (entry.fragments !== undefined) assert.equal(message.frames.length, entry.fragments, `${name}: ${entry.label} frames`);
      if (!message.rsv1) {
        assert.equal(message.length, size, `${name}: ${entry.label}: an uncompressed message is sent as is`);
      } else if (!takeover && message.payload !== null) {
        // Without context takeover every message inflates on its own.
        assert.ok(inflateFromWire(message.payload).equals(entry.data), `${name}: ${entry.label} does not inflate on its own`);
      }
      if (message.rsv1 && entry.label.includes('compressible')) {
        assert.ok(message.length < size / 20, `${name}: 1 MiB of JSON went as ${message.length} B`);
      }
    }
    // With context takeover, each compressed message of the run after the first refers back
    // to the ones before (only compressed messages enter the history): it goes as a fraction
    // of what it deflates to on its own, provided the window reaches back to the previous
    // message (zlib keeps 262 bytes of it for lookahead).
    if (takeover && (1 << bits) - 262 >= RUN_SMALL + 64) {
      let first = true;
      for (const [i, entry] of logged.entries()) {
        if (!/run \d+$/.test(entry.label) || !messages[i]!.rsv1) continue;
        if (first) {
          first = false;
          continue;
        }
        const alone = deflateForWire(entry.data, bits).length;
        assert.ok(
          messages[i]!.length * 4 < alone,
          `${name}: with context takeover ${entry.label} went as ${messages[i]!.length} B; on its own it deflates to ${alone} B`,
        );
      }
    }
  };
  check('client to server', wire.toServer.messages, log.client, (e) => rules.clientCompresses(e.data.length), rules.clientBits, rules.clientTakeover);
  check(
    'server to client',
    wire.toClient.messages,
    log.server,
    (e) => rules.serverCompresses(e.data.length, (e as Delivered).plain),
    rules.serverBits,
    rules.serverTakeover,
  );
}

// ───────────────────────────── hotline server ← ws clients ─────────────────────────────

interface ServerCase {
  name: string;
  path: string;
  options: true | ServerDeflateOptions;
}

const SERVER_CASES: ServerCase[] = [
  { name: 'defaults', path: '/defaults', options: true },
  { name: 'serverNoContextTakeover: false, threshold 0', path: '/takeover', options: { serverNoContextTakeover: false, threshold: 0 } },
  { name: 'serverNoContextTakeover: false, serverMaxWindowBits: 9, threshold 0', path: '/takeover-9', options: { serverNoContextTakeover: false, serverMaxWindowBits: 9, threshold: 0 } },
  { name: 'clientNoContextTakeover: true', path: '/client-nct', options: { clientNoContextTakeover: true } },
  { name: 'serverMaxWindowBits: 9', path: '/smb-9', options: { serverMaxWindowBits: 9 } },
  { name: 'serverMaxWindowBits: 8, threshold 0', path: '/smb-8', options: { serverMaxWindowBits: 8, threshold: 0 } },
  { name: 'clientMaxWindowBits: 9', path: '/cmb-9', options: { clientMaxWindowBits: 9 } },
  { name: 'clientMaxWindowBits: 8', path: '/cmb-8', options: { clientMaxWindowBits: 8 } },
];

interface WsOfferCase {
  name: string;
  options: true | WsDeflateOptions;
  offer: Offer;
  threshold: number;
}

const WS_OFFERS: WsOfferCase[] = [
  { name: 'true', options: true, offer: { clientMaxWindowBits: true }, threshold: WS_THRESHOLD },
  { name: '{ threshold: 0 }', options: { threshold: 0 }, offer: { clientMaxWindowBits: true }, threshold: 0 },
  { name: '{ serverNoContextTakeover: true }', options: { serverNoContextTakeover: true, threshold: 0 }, offer: { serverNoContextTakeover: true, clientMaxWindowBits: true }, threshold: 0 },
  { name: '{ clientNoContextTakeover: true }', options: { clientNoContextTakeover: true, threshold: 0 }, offer: { clientNoContextTakeover: true, clientMaxWindowBits: true }, threshold: 0 },
  { name: '{ serverMaxWindowBits: 10 }', options: { serverMaxWindowBits: 10, threshold: 0 }, offer: { serverMaxWindowBits: 10, clientMaxWindowBits: true }, threshold: 0 },
  { name: '{ clientMaxWindowBits: 10 }', options: { clientMaxWindowBits: 10, threshold: 0 }, offer: { clientMaxWindowBits: 10 }, threshold: 0 },
];

/**
 * The echo endpoint, with a few commands: `!extensions`, `!plain N` (N bytes of text sent with
 * compress: false), `!ping`, and `!blob N` (a Blob of N bytes, sent with compress: N === 10).
 */
const echoWithCommands: ConnectionHandlers<undefined> = {
  message(conn, message) {
    if (typeof message === 'string' && message.startsWith('!')) {
      const [name, arg] = message.split(' ');
      if (name === '!extensions') conn.send(conn.extensions);
      else if (name === '!plain') conn.send('p'.repeat(Number(arg)), { compress: false });
      else if (name === '!ping') conn.ping('server ping');
      else if (name === '!blob') conn.send(new Blob([Buffer.alloc(Number(arg), 'b')]), { compress: arg === '10' });
      return;
    }
    conn.send(message);
  },
};

/**
 * Each case may take this long before it fails as hung. Per case, not per suite: a suite of
 * fifty cases takes what the machine gives it while other test files run beside it.
 */
const PER_CASE = { timeout: 30_000 };

describe('hotline server ← ws clients', () => {
  let server: RunningServer;
  let proxy: RecordingProxy;

  before(async () => {
    const websocket: Record<string, { handlers: ConnectionHandlers<undefined>; perMessageDeflate: true | ServerDeflateOptions }> = {};
    for (const c of SERVER_CASES) websocket[c.path] = { handlers: echoWithCommands, perMessageDeflate: c.options };
    server = await serve({ port: 0, host: '127.0.0.1', websocket, endpoint: { maxPayload: MAX_PAYLOAD, closeTimeout: 2_000, heartbeatInterval: 0 }, shutdownTimeout: 1_000 });
    proxy = await RecordingProxy.start(server.port);
  });

  after(async () => {
    await proxy?.close();
    await server?.close();
  });

  for (const s of SERVER_CASES) {
    for (const c of WS_OFFERS) {
      test(`server ${s.name} ← ws perMessageDeflate ${c.name}`, PER_CASE, async () => {
        const nextWire = proxy.nextConnection();
        const peer = await WsPeer.open(`ws://127.0.0.1:${proxy.port}${s.path}`, { perMessageDeflate: c.options, maxPayload: MAX_PAYLOAD } satisfies WsClientOptions);
        const wire = await nextWire;
        const log: Log = { client: [], server: [] };
        try {
          const options = s.options === true ? {} : s.options;
          const expected = hotlineAnswer(options, c.offer);
          assert.equal(wire.toServer.header('sec-websocket-extensions'), formatOffer(c.offer), 'what ws offered');
          assert.equal(wire.toClient.header('sec-websocket-extensions'), expected, 'the answer on the wire');
          assert.equal(peer.responseExtensions, expected, 'the answer ws received');
          assert.equal(peer.ws.extensions, 'permessage-deflate', 'ws.extensions');
          assert.equal(await command(peer, log, '!extensions', 'reply'), expected, 'conn.extensions on the server');

          const n = parseAnswer(expected);
          const serverBits = n.serverMaxWindowBits ?? 15;
          const serverThreshold = options.threshold ?? HOTLINE_THRESHOLD;
          const rules: Rules = {
            // ws compresses everything while it keeps its context, and applies its
            // threshold only when it resets the context per message.
            clientCompresses: (size) => !n.clientNoContextTakeover || size >= c.threshold,
            serverCompresses: (size, plain) => !plain && serverBits >= 9 && size >= serverThreshold,
            clientBits: n.clientMaxWindowBits ?? (typeof c.offer.clientMaxWindowBits === 'number' ? c.offer.clientMaxWindowBits : 15),
            serverBits,
            clientTakeover: !n.clientNoContextTakeover,
            serverTakeover: !n.serverNoContextTakeover,
          };
          await battery(peer, log);
          await checkWire(wire, log, rules);
        } finally {
          await peer.close();
          await wire.closed;
        }
      });
    }
  }

  // A message that repeats the start of what the server sent a few hundred bytes earlier.
  // With context takeover over a 32 KiB window, a live zlib context (ws, on the way in)
  // refers back to it and sends a few bytes. hotline compresses each message with a window
  // sized to the history (windowFor in src/node/deflate.ts), but zlib never reaches further
  // back than the window minus 262 bytes of lookahead, so the oldest history is out of reach
  // whenever history and message fill nearly a power of two.
  for (const [first, second, again] of [[250, 200, 40], [2000, 1900, 140]] as const) {
    test(`server context takeover refers back as far as a live zlib context: ${first} B + ${second} B sent, then the first ${again} B again`, PER_CASE, async () => {
      const nextWire = proxy.nextConnection();
      const peer = await WsPeer.open(`ws://127.0.0.1:${proxy.port}/takeover`, { perMessageDeflate: { threshold: 0 } });
      const wire = await nextWire;
      try {
        assert.equal(peer.responseExtensions, 'permessage-deflate', 'context takeover both ways, 32 KiB windows');
        const x = pseudoRandomText(first, 1);
        const messages = [x, pseudoRandomText(second, 2), x.slice(0, again)];
        for (const text of messages) {
          peer.send(text);
          assertReceived(await peer.next(), text, `${text.length} B`);
        }
        assert.equal(await peer.close(), 1000);
        await wire.closed;
        const live = wire.toServer.messages[2]!;
        const ours = wire.toClient.messages[2]!;
        assert.ok(live.rsv1 && ours.rsv1);
        assert.ok(live.length < again / 4, `ws (a live context) sent the repeat as ${live.length} B`);
        assert.ok(
          ours.length <= live.length + 2,
          `hotline sent the repeat of ${again} B as ${ours.length} B; ws, with the same history, as ${live.length} B`,
        );
      } finally {
        await peer.close();
        await wire.closed;
      }
    });
  }

  test('conn.send(blob, { compress }) follows compress as other sends do', PER_CASE, async () => {
    const nextWire = proxy.nextConnection();
    const peer = await WsPeer.open(`ws://127.0.0.1:${proxy.port}/defaults`, { perMessageDeflate: true });
    const wire = await nextWire;
    try {
      // 4 KiB with compress: false, then 10 B with compress: true (below the 1 KiB threshold).
      for (const [size, fill] of [[4096, 'b'], [10, 'b']] as const) {
        peer.send(`!blob ${size}`);
        assertReceived(await peer.next(), Buffer.alloc(size, fill), `a Blob of ${size} B`);
      }
      assert.equal(await peer.close(), 1000);
      await wire.closed;
      const [plain, compressed] = wire.toClient.messages;
      assert.equal(plain!.rsv1, false, 'a 4 KiB Blob sent with compress: false went compressed');
      assert.equal(compressed!.rsv1, true, 'a 10 B Blob sent with compress: true went uncompressed');
    } finally {
      await peer.close();
      await wire.closed;
    }
  });

  test('a publish reaches deflate, plain and context-takeover subscribers with the same text', PER_CASE, async () => {
    const pub = await serve({
      port: 0,
      host: '127.0.0.1',
      websocket: {
        '/pub': { handlers: { open: (conn) => conn.subscribe('news'), message() {} }, perMessageDeflate: true },
        '/pub-takeover': { handlers: { open: (conn) => conn.subscribe('news'), message() {} }, perMessageDeflate: { serverNoContextTakeover: false } },
      },
      endpoint: { heartbeatInterval: 0 },
      shutdownTimeout: 1_000,
    });
    const pubProxy = await RecordingProxy.start(pub.port);
    const subscribers: Array<{ name: string; peer: Peer; wire: ProxiedConnection; answer: string | undefined; compressed: 'shared' | 'takeover' | 'plain' }> = [];
    try {
      const add = async (name: string, path: string, open: (url: string) => Promise<Peer>, compressed: 'shared' | 'takeover' | 'plain'): Promise<void> => {
        const nextWire = pubProxy.nextConnection();
        const peer = await open(`ws://127.0.0.1:${pubProxy.port}${path}`);
        const wire = await nextWire;
        subscribers.push({ name, peer, wire, answer: wire.toClient.header('sec-websocket-extensions'), compressed });
      };
      const wsPeer = (options: WsClientOptions['perMessageDeflate']) => (url: string) => WsPeer.open(url, { perMessageDeflate: options });
      const hotlinePeer = (options: boolean | ClientDeflateOptions) => (url: string) => HotlinePeer.open(url, { perMessageDeflate: options });
      await add('ws, deflate', '/pub', wsPeer(true), 'shared');
      await add('ws, deflate (second)', '/pub', wsPeer(true), 'shared');
      await add('ws, deflate, server_max_window_bits=10', '/pub', wsPeer({ serverMaxWindowBits: 10 }), 'shared');
      await add('ws, deflate, server_max_window_bits=8', '/pub', wsPeer({ serverMaxWindowBits: 8 }), 'plain');
      await add('ws, no deflate', '/pub', wsPeer(false), 'plain');
      await add('ws, deflate, server context takeover', '/pub-takeover', wsPeer(true), 'takeover');
      await add('hotline client, deflate', '/pub', hotlinePeer(true), 'shared');
      await add('hotline client, no deflate', '/pub', hotlinePeer(false), 'plain');

      assert.deepEqual(
        subscribers.map((s) => s.answer),
        [
          'permessage-deflate; server_no_context_takeover',
          'permessage-deflate; server_no_context_takeover',
          'permessage-deflate; server_no_context_takeover; server_max_window_bits=10',
          'permessage-deflate; server_no_context_takeover; server_max_window_bits=8',
          undefined,
          'permessage-deflate',
          'permessage-deflate; server_no_context_takeover',
          undefined,
        ],
      );

      /** A JSON text of exactly 4 KiB. */
      const big = (seq: number): string => {
        const items = Array.from({ length: 80 }, (_, i) => ({ id: i, name: `item ${i}`, price: (i * 37) % 1000 }));
        const base = JSON.stringify({ topic: 'news', seq, pad: '', items });
        assert.ok(base.length <= 4 * KiB, `${base.length}`);
        return JSON.stringify({ topic: 'news', seq, pad: ' '.repeat(4 * KiB - base.length), items });
      };
      const publishes: Array<{ text: string; options?: { compress: boolean }; compressible: boolean }> = [
        { text: big(1), compressible: true },
        { text: big(2), compressible: true },
        { text: JSON.stringify({ topic: 'news', seq: 3, note: 'small' }), compressible: false },
        { text: big(4), options: { compress: false }, compressible: false },
      ];
      for (const p of publishes) {
        assert.equal(pub.publish('news', p.text, p.options), subscribers.length, 'every subscriber is reached');
        for (const s of subscribers) {
          const got = await s.peer.next();
          assertReceived(got, p.text, `${s.name}: publish`);
        }
      }
      assert.equal(Buffer.byteLength(publishes[0]!.text), 4 * KiB);

      for (const s of subscribers) assert.equal(await s.peer.close(), 1000);
      for (const s of subscribers) await s.wire.closed;

      const wireOf = (s: (typeof subscribers)[number]): WireMessage[] => s.wire.toClient.messages;
      for (const s of subscribers) {
        const messages = wireOf(s);
        assert.equal(messages.length, publishes.length, `${s.name}: messages on the wire`);
        for (const [i, p] of publishes.entries()) {
          const m = messages[i]!;
          const expected = p.compressible && s.compressed !== 'plain';
          assert.equal(m.rsv1, expected, `${s.name}: publish ${i + 1} ${expected ? 'should' : 'should not'} be compressed`);
          if (!m.rsv1) assert.equal(m.length, Buffer.byteLength(p.text), `${s.name}: publish ${i + 1} went as is`);
          if (m.rsv1) assert.ok(m.length < Buffer.byteLength(p.text) / 2, `${s.name}: publish ${i + 1} compressed to ${m.length} B`);
          if (m.rsv1 && s.compressed === 'shared') {
            assert.ok(inflateFromWire(m.payload!).equals(Buffer.from(p.text)), `${s.name}: publish ${i + 1} inflates on its own`);
          }
        }
      }
      // One compression per window size: the subscribers with the same window got the same bytes.
      const shared15 = subscribers.filter((s) => s.compressed === 'shared' && !s.answer!.includes('server_max_window_bits'));
      assert.equal(shared15.length, 3);
      for (const s of shared15.slice(1)) {
        assert.ok(wireOf(s)[0]!.payload!.equals(wireOf(shared15[0]!)[0]!.payload!), `${s.name}: not the shared compressed bytes`);
      }
      // The context-takeover subscriber's second publish refers back to the first.
      const takeover = wireOf(subscribers.find((s) => s.compressed === 'takeover')!);
      assert.ok(takeover[1]!.length * 4 < takeover[0]!.length, `context takeover: ${takeover[0]!.length} B, then ${takeover[1]!.length} B`);
    } finally {
      for (const s of subscribers) await s.peer.close();
      await pubProxy.close();
      await pub.close();
    }
  });
});

// ───────────────────────────── hotline client → ws servers ─────────────────────────────

interface WsServerCase {
  name: string;
  options: WsDeflateOptions;
  threshold: number;
}

const WS_SERVER_CASES: WsServerCase[] = [
  { name: 'true, threshold 0', options: { threshold: 0 }, threshold: 0 },
  { name: '{ serverNoContextTakeover: true }', options: { serverNoContextTakeover: true }, threshold: WS_THRESHOLD },
  { name: '{ clientNoContextTakeover: true }', options: { clientNoContextTakeover: true }, threshold: WS_THRESHOLD },
  { name: '{ serverMaxWindowBits: 9 }', options: { serverMaxWindowBits: 9 }, threshold: WS_THRESHOLD },
  { name: '{ clientMaxWindowBits: 9 }', options: { clientMaxWindowBits: 9 }, threshold: WS_THRESHOLD },
];

interface HotlineOfferCase {
  name: string;
  options: true | ClientDeflateOptions;
  offer: Offer;
  threshold: number;
}

const HOTLINE_OFFERS: HotlineOfferCase[] = [
  { name: 'true', options: true, offer: { clientMaxWindowBits: true }, threshold: HOTLINE_THRESHOLD },
  { name: '{ serverNoContextTakeover: true, threshold: 0 }', options: { serverNoContextTakeover: true, threshold: 0 }, offer: { serverNoContextTakeover: true, clientMaxWindowBits: true }, threshold: 0 },
  { name: '{ clientNoContextTakeover: true, threshold: 0 }', options: { clientNoContextTakeover: true, threshold: 0 }, offer: { clientNoContextTakeover: true, clientMaxWindowBits: true }, threshold: 0 },
  { name: '{ serverMaxWindowBits: 10 }', options: { serverMaxWindowBits: 10 }, offer: { serverMaxWindowBits: 10, clientMaxWindowBits: true }, threshold: HOTLINE_THRESHOLD },
  { name: '{ clientMaxWindowBits: 10, threshold: 0 }', options: { clientMaxWindowBits: 10, threshold: 0 }, offer: { clientMaxWindowBits: 10 }, threshold: 0 },
];

describe('hotline client → ws servers', () => {
  const servers: Array<{ wss: WsServer; proxy: RecordingProxy; answers: Array<string | undefined> }> = [];

  before(async () => {
    for (const s of WS_SERVER_CASES) {
      const wss = new WsServer({ port: 0, host: '127.0.0.1', perMessageDeflate: s.options, maxPayload: MAX_PAYLOAD });
      await once(wss, 'listening');
      const answers: Array<string | undefined> = [];
      wss.on('headers', (headers: string[]) => {
        const line = headers.find((h) => h.toLowerCase().startsWith('sec-websocket-extensions:'));
        answers.push(line?.slice(line.indexOf(':') + 1).trim());
      });
      wss.on('connection', (ws) => {
        const answer = answers.at(-1);
        ws.on('message', (data: Buffer, binary: boolean) => {
          const text = binary ? '' : data.toString();
          if (text === '!extensions') ws.send(answer ?? '');
          else if (text.startsWith('!plain ')) ws.send('p'.repeat(Number(text.slice(7))), { compress: false });
          else if (text === '!ping') ws.ping('server ping');
          else ws.send(data, { binary });
        });
      });
      const address = wss.address();
      assert.ok(typeof address === 'object' && address !== null);
      servers.push({ wss, proxy: await RecordingProxy.start(address.port), answers });
    }
  });

  after(async () => {
    for (const { wss, proxy } of servers) {
      await proxy.close();
      for (const client of wss.clients) client.terminate();
      await new Promise((resolve) => wss.close(resolve));
    }
  });

  for (const [index, s] of WS_SERVER_CASES.entries()) {
    for (const c of HOTLINE_OFFERS) {
      test(`ws server perMessageDeflate ${s.name} ← hotline client perMessageDeflate ${c.name}`, PER_CASE, async () => {
        const { proxy, answers } = servers[index]!;
        const nextWire = proxy.nextConnection();
        const peer = await HotlinePeer.open(`ws://127.0.0.1:${proxy.port}/`, { perMessageDeflate: c.options, maxPayload: MAX_PAYLOAD });
        const wire = await nextWire;
        const log: Log = { client: [], server: [] };
        try {
          const answer = answers.at(-1);
          assert.equal(wire.toServer.header('sec-websocket-extensions'), formatOffer(c.offer), 'what hotline offered');
          assert.ok(answer !== undefined, 'ws accepted permessage-deflate');
          assert.equal(wire.toClient.header('sec-websocket-extensions'), answer, 'the answer on the wire');
          assert.equal(peer.ws.extensions, answer, 'client.extensions');
          assert.equal(await command(peer, log, '!extensions', 'reply'), answer);

          const n = parseAnswer(answer);
          // What ws answers, from its documented options.
          assert.equal(n.serverNoContextTakeover, c.offer.serverNoContextTakeover === true || s.options.serverNoContextTakeover === true);
          assert.equal(n.clientNoContextTakeover, c.offer.clientNoContextTakeover === true || s.options.clientNoContextTakeover === true);
          assert.equal(n.serverMaxWindowBits, s.options.serverMaxWindowBits ?? c.offer.serverMaxWindowBits);
          const offeredClientBits = typeof c.offer.clientMaxWindowBits === 'number' ? c.offer.clientMaxWindowBits : undefined;
          assert.equal(n.clientMaxWindowBits, s.options.clientMaxWindowBits ?? offeredClientBits);

          const clientBits = Math.min(n.clientMaxWindowBits ?? 15, offeredClientBits ?? 15);
          const serverBits = n.serverMaxWindowBits ?? 15;
          const rules: Rules = {
            clientCompresses: (size) => clientBits >= 9 && size >= c.threshold,
            // ws applies its threshold only when it resets its context per message.
            serverCompresses: (size, plain) => !plain && (!n.serverNoContextTakeover || size >= s.threshold),
            clientBits,
            serverBits,
            clientTakeover: !n.clientNoContextTakeover && c.offer.clientNoContextTakeover !== true,
            serverTakeover: !n.serverNoContextTakeover,
          };
          await battery(peer, log);
          await checkWire(wire, log, rules);
        } finally {
          await peer.close();
          await wire.closed;
        }
      });
    }
  }
});

// ───────────────────────────── the client's extensions attribute ─────────────────────────────

describe("hotline client: extensions is the server's header value", () => {
  // RFC 6455 §4.1 defines the extensions in use as the value of the server's
  // Sec-WebSocket-Extensions, and the WHATWG WebSocket's `extensions` returns them; Chromium
  // shows the value exactly as sent (checked by hand against these same answers).
  const answers: Array<[string, true | ClientDeflateOptions]> = [
    ['permessage-deflate;server_no_context_takeover', true],
    ['permessage-deflate; server_max_window_bits="10"', { serverMaxWindowBits: 10 }],
  ];
  for (const [answer, offer] of answers) {
    test(`an answer of ${answer} is reported as sent`, PER_CASE, async () => {
      const server = createNetServer((socket) => {
        socket.on('error', () => {});
        let head = '';
        socket.on('data', (chunk: Buffer) => {
          head += chunk.toString('latin1');
          if (!head.includes('\r\n\r\n')) return;
          const key = /^sec-websocket-key:\s*(\S+)/im.exec(head)![1]!;
          const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
          socket.end(
            'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
              `Sec-WebSocket-Accept: ${accept}\r\nSec-WebSocket-Extensions: ${answer}\r\n\r\n`,
          );
          socket.removeAllListeners('data');
        });
      });
      server.listen(0, '127.0.0.1');
      await once(server, 'listening');
      const { port } = server.address() as { port: number };
      try {
        const client = new HotlineClient(`ws://127.0.0.1:${port}/`, [], { perMessageDeflate: offer });
        const closed = new Promise<void>((resolve) => client.addEventListener('close', () => resolve()));
        const extensions = await new Promise<string>((resolve, reject) => {
          client.addEventListener('open', () => resolve(client.extensions));
          client.addEventListener('close', (e) => reject(new Error(`closed (${e.code}) before it opened`)));
        });
        client.close();
        await closed;
        assert.equal(extensions, answer);
      } finally {
        await new Promise((resolve) => server.close(resolve));
      }
    });
  }
});
