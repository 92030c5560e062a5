// A well-behaved client in a process of its own, for attack tests: while an attacker works
// on a server, it keeps doing round trips and says how long they took, so a test can show
// that the server still serves everyone else. Its own process keeps its timings clear of
// the attacker's work in the test process.
//
//   node --import tsx test/support/neighbour.ts OPTIONS_JSON
//
// OPTIONS_JSON: {"url": "ws://127.0.0.1:PORT", "echo": "/echo" | null, "channels": "/ws" | null,
// "channel": "neighbour:…", "interval": 20, "timeout": 10000, "headers": {…}}
//
// It connects to the echo endpoint (a text echo) and the hotline.v1 endpoint (subscribes to
// its own channel), prints `neighbour ready`, then every `interval` ms does one round trip on
// each: an echo, and a publish that counts once both its `ok` and its `msg` came back. On a
// stdin line `report N` it prints `neighbour report JSON` (the round trips since the previous
// report: count, p50, p99 and max in ms per kind, and every failure) and starts afresh. It
// answers once it has made N round trips of each kind since the previous report, at once on
// a failure, and after twice `timeout` ms with what it has: how many trips fit between two
// reports depends on how fast the machine runs the attack, how many it makes once asked does
// not. It exits when stdin ends. The parent's side is `Neighbour` in ./attack.ts.
import { createInterface } from 'node:readline';
import WebSocket from 'ws';

export interface NeighbourOptions {
  url: string;
  echo?: string | null;
  channels?: string | null;
  channel?: string;
  interval?: number;
  timeout?: number;
  headers?: Record<string, string>;
}

export interface RoundTrips {
  count: number;
  p50: number;
  p99: number;
  max: number;
}

export interface NeighbourReport {
  echo: RoundTrips;
  channel: RoundTrips;
  /** What went wrong since the last report: a time-out, a close, an error answer. */
  failures: string[];
}

function summary(samples: number[]): RoundTrips {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => (sorted.length === 0 ? 0 : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.at(-1) ?? 0 };
}

function open(url: string, protocols: string[], headers: Record<string, string> | undefined): Promise<WebSocket> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url, protocols, { headers, perMessageDeflate: false });
    ws.once('open', () => resolve(ws));
    ws.once('error', reject);
    ws.once('unexpected-response', (_req, res) => reject(new Error(`${url}: upgrade refused with ${String(res.statusCode)}`)));
  });
}

async function main(options: NeighbourOptions): Promise<void> {
  const interval = options.interval ?? 20;
  const timeout = options.timeout ?? 10_000;
  const channel = options.channel ?? `neighbour:${process.pid}`;
  let echoSamples: number[] = [];
  let channelSamples: number[] = [];
  let failures: string[] = [];
  let stopping = false;

  const echo = options.echo === null ? null : await open(options.url + (options.echo ?? '/echo'), [], options.headers);
  const channels = options.channels === null ? null : await open(options.url + (options.channels ?? '/ws'), ['hotline.v1'], options.headers);
  for (const [name, ws] of [['echo', echo], ['channels', channels]] as const) {
    ws?.on('close', (code: number, reason: Buffer) => {
      if (!stopping) failures.push(`${name} connection closed: ${code} ${reason.toString()}`);
    });
    ws?.on('error', (error: Error) => failures.push(`${name} connection error: ${error.message}`));
  }

  // One waiter at a time per connection: the round trips are sequential.
  let onEcho: ((text: string) => void) | null = null;
  echo?.on('message', (data: Buffer) => onEcho?.(data.toString()));
  let onChannel: ((message: { op: string; id?: number; ch?: string; data?: unknown; code?: string; message?: string }) => void) | null = null;
  channels?.on('message', (data: Buffer) => onChannel?.(JSON.parse(data.toString()) as never));

  let nextId = 1;
  const request = (ws: WebSocket, body: Record<string, unknown>): void => ws.send(JSON.stringify({ ...body, id: nextId++ }));

  if (channels !== null) {
    await new Promise<void>((resolve, reject) => {
      onChannel = (message) => {
        if (message.op === 'ok') resolve();
        else reject(new Error(`subscribe answered ${JSON.stringify(message)}`));
      };
      request(channels, { op: 'sub', ch: channel });
    });
  }
  process.stdout.write('neighbour ready\n');

  const timed = async (what: string, run: (done: () => void, fail: (why: string) => void) => void): Promise<number | null> => {
    const started = performance.now();
    try {
      await new Promise<void>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`${what}: no answer within ${timeout} ms`)), timeout);
        run(
          () => {
            clearTimeout(timer);
            resolve();
          },
          (why) => {
            clearTimeout(timer);
            reject(new Error(`${what}: ${why}`));
          },
        );
      });
      return performance.now() - started;
    } catch (error) {
      failures.push((error as Error).message);
      return null;
    }
  };

  // The report asked for and not yet given: the round trips of each kind it waits for, and its deadline.
  let asked: { trips: number; deadline: ReturnType<typeof setTimeout> } | null = null;
  const sendReport = (): void => {
    if (asked !== null) clearTimeout(asked.deadline);
    asked = null;
    const report: NeighbourReport = { echo: summary(echoSamples), channel: summary(channelSamples), failures };
    echoSamples = [];
    channelSamples = [];
    failures = [];
    process.stdout.write(`neighbour report ${JSON.stringify(report)}\n`);
  };
  const reportIfReady = (): void => {
    if (asked === null) return;
    const { trips } = asked;
    // A connection that is gone makes no more round trips: its report is due at once.
    const done = (ws: WebSocket | null, samples: number[]): boolean => ws === null || ws.readyState !== WebSocket.OPEN || samples.length >= trips;
    const enough = done(echo, echoSamples) && done(channels, channelSamples);
    if (enough || failures.length > 0) sendReport();
  };
  createInterface({ input: process.stdin }).on('line', (line) => {
    const match = /^report(?: (\d+))?$/.exec(line.trim());
    if (match === null || asked !== null) return;
    // Twice the round-trip timeout: a trip in flight has timed out (a failure) by then.
    asked = { trips: Number(match[1] ?? 0), deadline: setTimeout(sendReport, 2 * timeout) };
    reportIfReady();
  });
  process.stdin.on('end', () => {
    stopping = true;
    echo?.close();
    channels?.close();
    process.exit(0);
  });

  let n = 0;
  for (;;) {
    const text = `n${++n}`;
    if (echo !== null && echo.readyState === WebSocket.OPEN) {
      const rtt = await timed('echo', (done) => {
        onEcho = (got) => {
          if (got === text) done();
        };
        echo.send(text);
      });
      if (rtt !== null) echoSamples.push(rtt);
    }
    if (channels !== null && channels.readyState === WebSocket.OPEN) {
      const rtt = await timed('publish', (done, fail) => {
        let acked = false;
        let delivered = false;
        const id = nextId;
        onChannel = (message) => {
          if (message.op === 'err' && message.id === id) fail(`${message.code}: ${message.message}`);
          if (message.op === 'ok' && message.id === id) acked = true;
          if (message.op === 'msg' && message.ch === channel && message.data === text) delivered = true;
          if (acked && delivered) done();
        };
        request(channels, { op: 'pub', ch: channel, data: text });
      });
      if (rtt !== null) channelSamples.push(rtt);
    }
    reportIfReady();
    await new Promise((resolve) => setTimeout(resolve, interval));
  }
}

main(JSON.parse(process.argv[2] ?? '{}') as NeighbourOptions).catch((error: unknown) => {
  process.stdout.write(`neighbour failed ${(error as Error).message}\n`);
  process.exit(1);
});
