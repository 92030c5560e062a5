/**
 * Fan-out by encoding: one channel of `hotline serve`'s app (bench/lib/sse-server-main.ts)
 * read by JSON subscribers (hotline.v1), msgpack subscribers (hotline.v1.msgpack), or half of
 * each, in a fresh server process per row.
 *
 *   node --import tsx bench/msgpack.ts [--quick] [--subscribers N] [--seconds S] [--bytes N]
 *
 * --subscribers N  readers of the channel (default 200; --quick: 40)
 * --seconds S      length of the counted window (default 3; --quick: 1)
 * --bytes N        bytes in each message's `update` (default 256)
 *
 * 4 publishers (msgpack, so the publish side is the same in every row) each keep 32
 * publishes of `{seq, update: <N bytes>}` in flight. Each reader checks every delivery: its
 * offset follows the last one (a gap or a repeat fails the benchmark) and its `update` is N
 * bytes (a Uint8Array in msgpack, `{"$bin": base64}` in JSON). The figures: deliveries per
 * second, deliveries per second of server CPU (user + system, from /proc, over the window),
 * and bytes on the wire per delivery. Readers are this process's `ws` clients.
 */
import { performance } from 'node:perf_hooks';
import { decode, encode } from '@msgpack/msgpack';
import WebSocket from 'ws';
import { startAppServer, subscriberBenchArgs } from './lib/app-server.js';
import { processCpuSeconds } from './lib/proc.js';
import { columnsOf, formatCount, formatNumber, formatTable } from './lib/table.js';

const { subscribers: readers, seconds, bytes: size } = subscriberBenchArgs({ subscribers: 200, quickSubscribers: 40, bytes: 256 });
const CHANNEL = 'bench:msgpack';
const JSON_PROTOCOL = 'hotline.v1';
const MSGPACK_PROTOCOL = 'hotline.v1.msgpack';

type Mix = 'json' | 'msgpack' | 'mixed';

/** One reader: counts deliveries and their bytes, checking each one. */
class Reader {
  count = 0;
  bytes = 0;
  last = -1;
  ready = false;
  deliver(offset: number, update: unknown, frameBytes: number): void {
    if (this.last !== -1 && offset !== this.last + 1) throw new Error(`a reader got offset ${offset} after ${this.last}: a gap or a repeat`);
    const length = update instanceof Uint8Array ? update.length : typeof (update as { $bin?: unknown })?.$bin === 'string' ? Buffer.from((update as { $bin: string }).$bin, 'base64').length : -1;
    if (length !== size) throw new Error(`a delivery's update has ${length} bytes, not ${size}`);
    this.last = offset;
    this.count++;
    this.bytes += frameBytes;
  }
}

async function reader(port: number, protocol: string): Promise<{ reader: Reader; close(): void }> {
  const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, protocol, { perMessageDeflate: false });
  const r = new Reader();
  ws.on('message', (data: Buffer, binary: boolean) => {
    const message = (binary ? decode(data) : JSON.parse(data.toString())) as { op: string; offset?: number; data?: { update?: unknown } };
    if (message.op === 'ok') r.ready = true;
    else if (message.op === 'msg') r.deliver(message.offset!, message.data?.update, data.length);
  });
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  if (ws.protocol !== protocol) throw new Error(`the server selected ${ws.protocol}, not ${protocol}`);
  const sub = { op: 'sub', id: 1, ch: CHANNEL };
  ws.send(protocol === MSGPACK_PROTOCOL ? encode(sub) : JSON.stringify(sub));
  return { reader: r, close: () => ws.terminate() };
}

async function until(check: () => boolean, what: string, ms = 60_000): Promise<void> {
  const deadline = performance.now() + ms;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Publishers in msgpack, each keeping 32 publishes in flight until stopped. */
async function publishers(port: number): Promise<{ stop(): void }> {
  const update = Uint8Array.from({ length: size }, (_, i) => (i * 31) & 255);
  let running = true;
  const sockets = await Promise.all(
    Array.from({ length: 4 }, async () => {
      const ws = new WebSocket(`ws://127.0.0.1:${port}/ws`, MSGPACK_PROTOCOL, { perMessageDeflate: false });
      await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
      let id = 0;
      const send = (): void => ws.send(encode({ op: 'pub', id: ++id, ch: CHANNEL, data: { seq: id, update } }));
      ws.on('message', (data: Buffer) => {
        const answer = decode(data) as { op: string; code?: string };
        if (answer.op === 'err') throw new Error(`a publish was refused: ${answer.code}`);
        if (answer.op === 'ok' && running) send();
      });
      for (let i = 0; i < 32; i++) send();
      return ws;
    }),
  );
  return {
    stop() {
      running = false;
      for (const ws of sockets) ws.close();
    },
  };
}

interface Row {
  rate: number;
  perCpuSecond: number;
  bytesPerDelivery: number;
}

async function measure(mix: Mix): Promise<Row> {
  const server = await startAppServer();
  try {
    const protocolOf = (i: number): string => (mix === 'json' ? JSON_PROTOCOL : mix === 'msgpack' ? MSGPACK_PROTOCOL : i % 2 === 0 ? JSON_PROTOCOL : MSGPACK_PROTOCOL);
    const subscribed: Array<{ reader: Reader; close(): void }> = [];
    for (let i = 0; i < readers; i += 50) subscribed.push(...(await Promise.all(Array.from({ length: Math.min(50, readers - i) }, (_, j) => reader(server.port, protocolOf(i + j))))));
    await until(() => subscribed.every((s) => s.reader.ready), 'the readers to subscribe');
    const load = await publishers(server.port);
    await new Promise((resolve) => setTimeout(resolve, 500));
    const total = (): { count: number; bytes: number } => subscribed.reduce((t, s) => ({ count: t.count + s.reader.count, bytes: t.bytes + s.reader.bytes }), { count: 0, bytes: 0 });
    const before = total();
    const cpuBefore = processCpuSeconds(server.pid);
    const started = performance.now();
    await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
    const after = total();
    const elapsed = (performance.now() - started) / 1000;
    const cpu = processCpuSeconds(server.pid) - cpuBefore;
    load.stop();
    for (const s of subscribed) s.close();
    const delivered = after.count - before.count;
    if (delivered === 0) throw new Error('nothing was delivered in the window');
    return { rate: delivered / elapsed, perCpuSecond: delivered / cpu, bytesPerDelivery: (after.bytes - before.bytes) / delivered };
  } finally {
    server.child.stdin!.end();
  }
}

const rows: Array<[Mix, Row]> = [];
for (const mix of ['json', 'msgpack', 'mixed'] as const) rows.push([mix, await measure(mix)]);
const json = rows[0]![1];
console.log(`${readers} readers of one channel, 4 msgpack publishers × 32 in flight, {seq, update: ${size} bytes}, ${seconds} s`);
console.log(
  formatTable(
    columnsOf('subscribers', 'deliveries/s', 'deliveries per server CPU-second', 'vs JSON', 'bytes per delivery'),
    rows.map(([mix, r]) => [
      mix === 'json' ? 'all JSON (hotline.v1)' : mix === 'msgpack' ? 'all msgpack (hotline.v1.msgpack)' : 'half each',
      formatCount(r.rate),
      formatCount(r.perCpuSecond),
      `${formatNumber(r.perCpuSecond / json.perCpuSecond)}×`,
      formatNumber(r.bytesPerDelivery),
    ]),
  ),
);
process.exit(0);
