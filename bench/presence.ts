/**
 * Presence updates against plain publishes: one channel of `hotline serve`'s app
 * (bench/lib/sse-server-main.ts, its defaults but the publish rate: join and leave pushes on)
 * with N readers, and 4 writers on the same channel that either set their presence state
 * (`state`: every subscriber gets an `update`) or publish (`pub`: every subscriber gets a
 * `msg`) the same `{seq, pad}` object, in a fresh server process per row.
 *
 *   node --import tsx bench/presence.ts [--quick] [--subscribers N] [--seconds S] [--bytes N]
 *
 * --subscribers N  readers of the channel (default 1000; --quick: 100)
 * --seconds S      length of the counted window (default 3; --quick: 1)
 * --bytes N        characters of `pad` (default 128; a state is at most 1024 characters of JSON)
 *
 * Each writer keeps 16 requests in flight. Every reader checks every delivery: a writer's
 * updates come with its `seq` 1, 2, 3, … (a gap or a repeat fails the benchmark), messages
 * with contiguous offsets, `pad` whole; and once the writers stop, every reader must have
 * got every update (or message) a writer had acknowledged. The figures: deliveries per second
 * in the window, per second of server CPU (user + system, from /proc), and bytes per
 * delivery; the ratio is presence updates to publishes. Readers are this process's `ws`
 * clients (JSON, hotline.v1), so they share two cores with the server.
 */
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import WebSocket from 'ws';
import { startAppServer, subscriberBenchArgs } from './lib/app-server.js';
import { processCpuSeconds } from './lib/proc.js';
import { columnsOf, formatCount, formatNumber, formatTable } from './lib/table.js';

const { subscribers: readerCount, seconds, bytes: padLength } = subscriberBenchArgs({ subscribers: 1000, quickSubscribers: 100, bytes: 128 });
const WRITERS = 4;
const IN_FLIGHT = 16;
const CHANNEL = 'bench:presence';
const PAD = 'p'.repeat(padLength);

type Kind = 'publish' | 'presence';

interface Wire {
  op: string;
  id?: number;
  offset?: number;
  data?: { seq?: number; pad?: string };
  member?: { client?: string; state?: { seq?: number; pad?: string } };
  code?: string;
}

/** One subscriber's checks: each writer's updates in `seq` order, messages at contiguous offsets. */
class Reader {
  count = 0;
  bytes = 0;
  ready = false;
  /** Client ids whose join this reader saw. */
  readonly joined = new Set<string>();
  /** The last update's seq by writer client id. */
  readonly lastSeq = new Map<string, number>();
  lastOffset = 0;
  messages = 0;

  receive(message: Wire, frameBytes: number): void {
    switch (message.op) {
      case 'ok':
        if (message.id === 1) this.ready = true;
        return;
      case 'join':
        this.joined.add(message.member!.client!);
        return;
      case 'update': {
        const client = message.member!.client!;
        const state = message.member!.state!;
        const expected = (this.lastSeq.get(client) ?? 0) + 1;
        if (state.seq !== expected) throw new Error(`a reader got ${client}'s update ${state.seq} where ${expected} was due: a gap or a repeat`);
        if (state.pad !== PAD) throw new Error('an update lost its pad');
        this.lastSeq.set(client, expected);
        break;
      }
      case 'msg':
        if (this.lastOffset !== 0 && message.offset !== this.lastOffset + 1) throw new Error(`a reader got offset ${message.offset} after ${this.lastOffset}`);
        if (message.data?.pad !== PAD) throw new Error('a message lost its pad');
        this.lastOffset = message.offset!;
        this.messages++;
        break;
      case 'err':
        throw new Error(`a reader was refused: ${message.code}`);
      default:
        return;
    }
    this.count++;
    this.bytes += frameBytes;
  }
}

/** Connections this process ends: their close is expected. */
const stopping = new WeakSet<WebSocket>();

/** A subscribed connection; a close fails the benchmark (a slow consumer would be dropped). */
async function subscribe(port: number): Promise<{ ws: WebSocket; reader: Reader }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, 'hotline.v1', { perMessageDeflate: false });
  const reader = new Reader();
  ws.on('message', (data: Buffer) => reader.receive(JSON.parse(data.toString()) as Wire, data.length));
  ws.on('close', (code) => {
    if (!stopping.has(ws)) throw new Error(`a subscriber was closed (${code}) during the run`);
  });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  ws.send(JSON.stringify({ op: 'sub', id: 1, ch: CHANNEL }));
  return { ws, reader };
}

function stop(ws: WebSocket): void {
  stopping.add(ws);
  ws.terminate();
}

async function until(check: () => boolean, what: string, ms = 120_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** A writer: subscribed too (a state needs it), then `state` or `pub` with IN_FLIGHT in flight until stopped. */
class Writer {
  acked = 0;
  private sent = 0;
  private running = true;
  clientId = '';

  constructor(
    readonly ws: WebSocket,
    private readonly kind: Kind,
  ) {
    ws.on('message', (data: Buffer) => {
      const message = JSON.parse(data.toString()) as Wire;
      if (message.op === 'err') throw new Error(`a writer was refused: ${message.code}`);
      if (message.op === 'join' && this.clientId === '') this.clientId = message.member!.client!;
      if (message.op !== 'ok' || message.id === 1) return;
      this.acked++;
      if (this.running) this.send();
    });
  }

  start(): void {
    for (let i = 0; i < IN_FLIGHT; i++) this.send();
  }

  stop(): void {
    this.running = false;
  }

  get settled(): boolean {
    return this.acked === this.sent;
  }

  private send(): void {
    const seq = ++this.sent;
    const body = { seq, pad: PAD };
    // Request ids from 2: 1 is the sub.
    const request = this.kind === 'presence' ? { op: 'state', id: seq + 1, ch: CHANNEL, state: body } : { op: 'pub', id: seq + 1, ch: CHANNEL, data: body };
    this.ws.send(JSON.stringify(request));
  }
}

interface Row {
  rate: number;
  perCpuSecond: number;
  bytesPerDelivery: number;
  checked: number;
}

async function measure(kind: Kind): Promise<Row> {
  const server = await startAppServer();
  try {
    const subscribed: Array<{ ws: WebSocket; reader: Reader }> = [];
    for (let i = 0; i < readerCount; i += 50) subscribed.push(...(await Promise.all(Array.from({ length: Math.min(50, readerCount - i) }, () => subscribe(server.port)))));
    await until(() => subscribed.every((s) => s.reader.ready), 'the readers to subscribe');
    const writers: Writer[] = [];
    for (let i = 0; i < WRITERS; i++) {
      const { ws } = await subscribe(server.port);
      const writer = new Writer(ws, kind);
      await until(() => writer.clientId !== '', 'a writer’s own join');
      writers.push(writer);
    }
    // Joins are pushed in order: the writers' joins at every reader mean the join storm is over.
    await until(() => subscribed.every((s) => writers.every((w) => s.reader.joined.has(w.clientId))), 'the writers’ joins at every reader');
    const readers = subscribed.map((s) => s.reader);
    for (const writer of writers) writer.start();
    await new Promise((resolve) => setTimeout(resolve, 500));
    const total = (): { count: number; bytes: number } => readers.reduce((t, r) => ({ count: t.count + r.count, bytes: t.bytes + r.bytes }), { count: 0, bytes: 0 });
    const before = total();
    const cpuBefore = processCpuSeconds(server.pid);
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const after = total();
    const elapsed = (performance.now() - started) / 1000;
    const cpu = processCpuSeconds(server.pid) - cpuBefore;
    for (const writer of writers) writer.stop();
    await until(() => writers.every((w) => w.settled), 'the writers’ last answers');
    // Every subscriber got every acknowledged update (or message), checked in order on the way.
    const sent = writers.reduce((n, w) => n + w.acked, 0);
    await until(
      () => readers.every((r) => (kind === 'presence' ? writers.every((w) => r.lastSeq.get(w.clientId) === w.acked) : r.messages === sent)),
      'every reader to get every acknowledged delivery',
    );
    for (const s of subscribed) stop(s.ws);
    for (const writer of writers) stop(writer.ws);
    const delivered = after.count - before.count;
    if (delivered === 0) throw new Error('nothing was delivered in the window');
    return { rate: delivered / elapsed, perCpuSecond: delivered / cpu, bytesPerDelivery: (after.bytes - before.bytes) / delivered, checked: sent * readers.length };
  } finally {
    server.child.stdin!.end();
  }
}

const loadStart = loadavg()[0]!;
const publish = await measure('publish');
const presence = await measure('presence');
console.log(
  `${readerCount} readers + ${WRITERS} writers on one channel (JSON), each writer ${IN_FLIGHT} in flight, {seq, pad: ${padLength} characters}, ${seconds} s windows`,
);
console.log(
  formatTable(
    columnsOf('each writer sends', 'deliveries/s', 'fanned out/s', 'deliveries per server CPU-second', 'vs publishes', 'bytes per delivery', 'deliveries checked'),
    ([['pub (msg to each)', publish], ['state (update to each)', presence]] as const).map(([name, r]) => [
      name,
      formatCount(r.rate),
      formatNumber(r.rate / readerCount),
      formatCount(r.perCpuSecond),
      `${formatNumber(r.perCpuSecond / publish.perCpuSecond)}×`,
      formatNumber(r.bytesPerDelivery),
      formatCount(r.checked),
    ]),
  ),
);
console.log(`rate ratio (updates / publishes): ${formatNumber(presence.rate / publish.rate)}; load average ${loadStart.toFixed(2)} -> ${loadavg()[0]!.toFixed(2)}`);
process.exit(0);
