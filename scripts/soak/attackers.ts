// The soak's attackers (`npm run soak -- --attack NAME,…`): each runs beside the
// well-behaved clients for the whole soak, reconnecting whenever the server closes it, and
// counts what it got: closes by code, `err` answers by code, echoes and answers.
//
//   fragments        1-byte fragment messages: 64 KiB echoes on /echo, 4 KiB pings on /ws
//   compression      compressed frames at full speed: ~1 KiB that inflate to 1 MiB on /echo
//                    (paced by inflateRate), 200 KiB pings on /ws (the same), and bombs
//                    past /ws's maxPayload (1009)
//   channel-flood    history and publish to ever-new channel names on /ws (rate limits,
//                    then 1008 for sustained abuse)
//   queue-flood      history requests as fast as TCP takes them behind /hooks's
//                    asynchronous hook (maxPendingRequests pauses reading)
//   identity-switch  on /hooks: auth as alice, subscribe to private:alice, publish there,
//                    auth as bob, again and again (the subscription must end; authRate)
import { Buffer } from 'node:buffer';
import { deflateRawSync, constants as zlib } from 'node:zlib';
import { clientFrame } from '../../test/support/attack.js';
import { ChannelPeer, oneByteFragments, RawPeer, type Incoming } from './peers.js';

export const ATTACKS = ['fragments', 'compression', 'channel-flood', 'queue-flood', 'identity-switch'] as const;
export type AttackName = (typeof ATTACKS)[number];

/** Between a close and the next connection: attackers reconnect, but not in a tight loop. */
const RECONNECT_MS = 250;
/** What an attacker leaves unsent in its own buffers before it waits (bounds its memory, not the server's). */
const MAX_BUFFERED = 1 << 20;

export class Attacker {
  readonly outcomes = new Map<string, number>();
  /** Failures of the server's contract (a message leaked to another identity, a wrong echo). */
  readonly violations: string[] = [];
  private stopping = false;
  private readonly loops: Array<Promise<void>> = [];
  private readonly peers = new Set<{ destroy(): void } | { close(): void }>();

  constructor(
    readonly name: AttackName,
    private readonly port: number,
  ) {}

  count(label: string, n = 1): void {
    this.outcomes.set(label, (this.outcomes.get(label) ?? 0) + n);
  }

  violate(message: string): void {
    if (this.violations.length < 20) this.violations.push(message);
  }

  get stopped(): boolean {
    return this.stopping;
  }

  start(): void {
    for (const loop of LOOPS[this.name]) this.loops.push(this.forever(loop));
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const peer of this.peers) {
      if ('destroy' in peer) peer.destroy();
      else peer.close();
    }
    await Promise.all(this.loops);
  }

  /** Runs one connection's attack, counts how it ended, and starts again until stopped. */
  private async forever(loop: Loop): Promise<void> {
    while (!this.stopping) {
      try {
        const code = await loop(this.port, this, (peer) => this.peers.add(peer));
        if (!this.stopping) this.count(`closed ${code}`);
      } catch (error) {
        if (!this.stopping) this.count(`connect failed: ${(error as Error).message}`);
      }
      await new Promise((resolve) => setTimeout(resolve, RECONNECT_MS));
    }
  }
}

/** One connection's attack: resolves with the code it was closed with. */
type Loop = (port: number, attacker: Attacker, track: (peer: RawPeer | ChannelPeer) => void) => Promise<number>;

const ECHO_SIZE = 64 * 1024;

const fragmentsEcho: Loop = async (port, attacker, track) => {
  const peer = await RawPeer.connect(port, '/echo');
  track(peer);
  const message = Buffer.alloc(ECHO_SIZE, 0x5a);
  const wire = oneByteFragments(0x2, message);
  let echoed: () => void = () => {};
  peer.onFrame((opcode, payload) => {
    if (opcode !== 0x2) return;
    if (payload.equals(message)) attacker.count('64 KiB echoed whole');
    else attacker.violate(`a message of 65536 one-byte fragments was echoed as ${payload.length} other bytes`);
    echoed();
  });
  while (peer.open && !attacker.stopped) {
    const answer = new Promise<void>((resolve) => (echoed = resolve));
    for (let at = 0; at < wire.length && peer.open; at += 64 * 1024) await peer.write(wire.subarray(at, at + 64 * 1024));
    await Promise.race([answer, peer.closed]);
  }
  peer.destroy();
  return peer.closed;
};

const fragmentsPing: Loop = async (port, attacker, track) => {
  const peer = await RawPeer.connect(port, '/ws', ['Sec-WebSocket-Protocol: hotline.v1']);
  track(peer);
  let answered: () => void = () => {};
  peer.onFrame((opcode, payload) => {
    if (opcode === 0x1 && payload.includes('"pong"')) {
      attacker.count('4 KiB ping answered');
      answered();
    }
  });
  for (let id = 1; peer.open && !attacker.stopped; id++) {
    const answer = new Promise<void>((resolve) => (answered = resolve));
    const ping = Buffer.from(`{"op":"ping","id":${id}}`.padEnd(4096, ' '));
    await peer.write(oneByteFragments(0x1, ping));
    await Promise.race([answer, peer.closed]);
  }
  peer.destroy();
  return peer.closed;
};

const DEFLATE = 'Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits';

/** A compressed frame (RFC 7692 §7.2.1: the sync flush's 00 00 ff ff removed) of `text`. */
function compressedFrame(text: string): Buffer {
  const body = deflateRawSync(Buffer.from(text), { finishFlush: zlib.Z_SYNC_FLUSH });
  return clientFrame(0x1, body.subarray(0, body.length - 4), true, true);
}

/** Writes `frame` as fast as the server reads it, counting each answer `isAnswer` recognises. */
function floodCompressed(path: string, headers: readonly string[], frame: Buffer, label: string, isAnswer: (opcode: number, payload: Buffer) => boolean): Loop {
  return async (port, attacker, track) => {
    const peer = await RawPeer.connect(port, path, [DEFLATE, ...headers]);
    track(peer);
    peer.onFrame((opcode, payload) => {
      if (isAnswer(opcode, payload)) attacker.count(label);
    });
    while (peer.open && !attacker.stopped) await peer.write(frame);
    peer.destroy();
    return peer.closed;
  };
}

const MiB = 1 << 20;
const compressionEcho = floodCompressed('/echo', [], compressedFrame('e'.repeat(MiB - 1)), '1 MiB echo (from ~1 KiB sent)', (opcode) => opcode === 0x1);
// The server compresses its pongs too: any data frame on /ws here is a pong.
const compressionPing = floodCompressed(
  '/ws',
  ['Sec-WebSocket-Protocol: hotline.v1'],
  compressedFrame('{"op":"ping","id":1}'.padEnd(200 * 1024, ' ')),
  '200 KiB ping answered',
  (opcode) => opcode === 0x1,
);
const compressionBomb = floodCompressed('/ws', ['Sec-WebSocket-Protocol: hotline.v1'], compressedFrame(' '.repeat(MiB)), 'bomb answered (never)', (opcode) => opcode === 0x1);

/** Sends requests made by `next` with at most `inFlight` unanswered, counting answers by op and code. */
function requestFlood(path: string, inFlight: number, setup: (peer: ChannelPeer, attacker: Attacker) => Promise<void>, next: (n: number) => Record<string, unknown>): Loop {
  return async (port, attacker, track) => {
    const peer = await ChannelPeer.connect(port, path);
    track(peer);
    await setup(peer, attacker);
    let pending = 0;
    let wake: () => void = () => {};
    for (let n = 0; peer.open && !attacker.stopped; n++) {
      while (pending >= inFlight || peer.bufferedAmount > MAX_BUFFERED) {
        await Promise.race([new Promise<void>((resolve) => (wake = resolve)), peer.closed, new Promise((resolve) => setTimeout(resolve, 50))]);
        if (!peer.open || attacker.stopped) break;
      }
      pending++;
      void peer.request(next(n)).then((answer) => {
        pending--;
        if (answer.op !== 'closed') attacker.count(answer.op === 'err' ? `err ${answer.code ?? '?'}` : answer.op);
        wake();
      });
    }
    peer.close();
    return peer.closed;
  };
}

let floodChannels = 0;
const channelFlood = requestFlood(
  '/ws',
  256,
  async () => {},
  (n) => (n % 2 === 0 ? { op: 'history', ch: `flood:${floodChannels++}`, limit: 10 } : { op: 'pub', ch: `flood:${floodChannels++}`, data: { n } }),
);

const queueFlood = requestFlood(
  '/hooks',
  // Far more than maxPendingRequests (256): the rest wait in TCP, as a flood's do.
  20_000,
  async (peer, attacker) => {
    const answer = await peer.request({ op: 'auth', token: 'alice' });
    if (answer.op !== 'ok') attacker.count(`auth ${answer.code ?? answer.op}`);
  },
  () => ({ op: 'history', ch: 'queue', limit: 1 }),
);

const identitySwitch: Loop = async (port, attacker, track) => {
  const peer = await ChannelPeer.connect(port, '/hooks');
  track(peer);
  let identity = '';
  peer.onPush((push) => {
    if (push.op === 'unsub' && push.ch === 'private:alice') attacker.count(`unsub push ${push.code ?? '?'}`);
    // alice's channel must not reach the connection once it is bob (the auth's ok came first).
    if (push.op === 'msg' && push.ch === 'private:alice') {
      if (identity === 'bob') attacker.violate('a message of private:alice reached the connection after it authenticated as bob');
      else attacker.count("alice's message delivered to alice");
    }
  });
  const note = (answer: Incoming, what: string): void => {
    if (answer.op !== 'closed') attacker.count(answer.op === 'err' ? `${what}: err ${answer.code ?? '?'}` : `${what}: ${answer.op}`);
  };
  while (peer.open && !attacker.stopped) {
    const asAlice = await peer.request({ op: 'auth', token: 'alice' });
    note(asAlice, 'auth alice');
    if (asAlice.op === 'ok') identity = 'alice';
    note(await peer.request({ op: 'sub', ch: 'private:alice' }), 'sub private:alice');
    note(await peer.request({ op: 'pub', ch: 'private:alice', data: { secret: true } }), 'pub private:alice');
    const asBob = await peer.request({ op: 'auth', token: 'bob' });
    note(asBob, 'auth bob');
    if (asBob.op === 'ok') identity = 'bob';
    note(await peer.request({ op: 'sub', ch: 'private:alice' }), 'sub private:alice');
    note(await peer.request({ op: 'pub', ch: 'private:alice', data: { secret: false } }), 'pub private:alice');
    // 20 rounds a second: past authRate (1/s, burst 10) without spinning a shared machine's cores.
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  peer.close();
  return peer.closed;
};

const LOOPS: Record<AttackName, readonly Loop[]> = {
  fragments: [fragmentsEcho, fragmentsPing],
  compression: [compressionEcho, compressionPing, compressionBomb],
  'channel-flood': [channelFlood],
  'queue-flood': [queueFlood],
  'identity-switch': [identitySwitch],
};

/** Parses `--attack`: names separated by commas, or `all`. */
export function parseAttacks(value: string | undefined): AttackName[] {
  if (value === undefined || value === '') return [];
  const names = value === 'all' ? [...ATTACKS] : value.split(',').map((s) => s.trim());
  for (const name of names) if (!(ATTACKS as readonly string[]).includes(name)) throw new Error(`unknown attack ${name}; one of ${ATTACKS.join(', ')} or all`);
  return names as AttackName[];
}
