import { connect as netConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { buildClientRequest, validateServerResponse } from '../protocol/handshake.js';
import { HttpHeadParser } from '../protocol/http-head.js';
import { HandshakeError } from '../protocol/errors.js';
import { CloseCode, WebSocketProtocol } from '../protocol/index.js';
import { parseCommandArgs, USAGE_ERROR, usageError } from './args.js';

export const BENCH_USAGE = `usage: hotline bench URL [--scenario echo|latency|handshakes|all] [--connections 100]
                    [--in-flight 8] [--size 32] [--binary] [--seconds 5] [--protocol P]

Load-tests a WebSocket server that echoes (such as hotline serve's /echo): messages/s with
many connections, round-trip latency on one connection, and handshakes/s. The generator
runs in this process: on one machine it competes with the server for CPU, so pin them apart
(taskset) for figures worth comparing; bench/ in the repository does that, beside ws.
`;

interface Options {
  url: URL;
  protocols: string[];
  connections: number;
  inFlight: number;
  size: number;
  binary: boolean;
  seconds: number;
}

/** One raw client connection: the handshake by hand, then frames through the protocol core. */
class BenchSocket {
  readonly protocol: WebSocketProtocol;
  private readonly socket: Socket;
  private parser: HttpHeadParser<'response'> | null = new HttpHeadParser('response');
  onMessage: (data: Buffer) => void = () => {};

  private constructor(socket: Socket, protocol: WebSocketProtocol) {
    this.socket = socket;
    this.protocol = protocol;
  }

  static open(options: Options): Promise<BenchSocket> {
    const { url } = options;
    const secure = url.protocol === 'wss:';
    const port = Number(url.port || (secure ? 443 : 80));
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const socket = secure ? tlsConnect({ host, port, servername: host }) : netConnect({ host, port });
    socket.setNoDelay(true);
    const { key, request } = buildClientRequest({ host: url.host, path: url.pathname + url.search, protocols: options.protocols });
    let bench: BenchSocket | null = null;
    const protocol = new WebSocketProtocol({ onMessage: (data) => bench?.onMessage(data) }, { role: 'client', maxPayload: 0 });
    bench = new BenchSocket(socket, protocol);
    socket.write(request, 'latin1');
    return new Promise((resolve, reject) => {
      socket.once('error', reject);
      socket.once('close', () => reject(new Error('the connection closed during the handshake')));
      socket.on('data', (chunk: Buffer) => {
        const self = bench!;
        if (self.parser === null) {
          protocol.receiveData(chunk);
          self.flush();
          return;
        }
        try {
          const head = self.parser.push(chunk);
          if (head === null) return;
          validateServerResponse(head, { key, protocols: options.protocols });
        } catch (error) {
          socket.destroy();
          reject(error instanceof Error ? error : new Error(String(error)));
          return;
        }
        const rest = Buffer.from(self.parser.rest);
        self.parser = null;
        socket.removeAllListeners('close');
        resolve(self);
        if (rest.length > 0) {
          protocol.receiveData(rest);
          self.flush();
        }
      });
    });
  }

  send(payload: Buffer | string): void {
    this.protocol.send(payload);
    this.flush();
  }

  flush(): void {
    const chunks = this.protocol.takeOutgoing();
    if (chunks.length === 1) this.socket.write(chunks[0]!);
    else if (chunks.length > 1) this.socket.write(Buffer.concat(chunks));
  }

  /** Closing handshake, then waits for the server to close TCP. */
  close(): Promise<void> {
    return new Promise((resolve) => {
      this.socket.once('close', () => resolve());
      if (this.socket.destroyed) {
        resolve();
        return;
      }
      this.protocol.close(CloseCode.NormalClosure);
      this.flush();
      setTimeout(() => this.socket.destroy(), 5_000).unref();
    });
  }
}

function percentile(sorted: number[], p: number): number {
  return sorted.length === 0 ? NaN : sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

function progress(text: string): void {
  if (process.stdout.isTTY) process.stdout.write(`\r\x1b[K${text}`);
}

function doneProgress(): void {
  if (process.stdout.isTTY) process.stdout.write('\r\x1b[K');
}

async function echoScenario(o: Options): Promise<string[]> {
  const payload = o.binary ? Buffer.alloc(o.size, 0xab) : 'x'.repeat(o.size);
  const sockets = await Promise.all(Array.from({ length: o.connections }, () => BenchSocket.open(o)));
  let received = 0;
  let counting = false;
  let failure: Error | null = null;
  for (const socket of sockets) {
    socket.onMessage = (data) => {
      if (data.length !== o.size) {
        failure ??= new Error(`an echo of ${data.length} bytes came back for ${o.size} sent: is this an echo endpoint?`);
        return;
      }
      if (counting) received++;
      socket.send(payload);
    };
    for (let i = 0; i < o.inFlight; i++) socket.send(payload);
  }
  // A second of warm-up, then the counted window, with a progress line each second.
  await new Promise((resolve) => setTimeout(resolve, 1_000));
  counting = true;
  const started = performance.now();
  for (let s = 1; s <= o.seconds; s++) {
    await new Promise((resolve) => setTimeout(resolve, 1_000));
    progress(`echo: ${s}/${o.seconds} s, ${Math.round(received / ((performance.now() - started) / 1000)).toLocaleString('en-US')} messages/s`);
  }
  const rate = received / ((performance.now() - started) / 1000);
  counting = false;
  for (const socket of sockets) socket.onMessage = () => {};
  await Promise.all(sockets.map((s) => s.close()));
  doneProgress();
  if (failure !== null) throw failure;
  return [`echo ${o.size} B ${o.binary ? 'binary' : 'text'}, ${o.connections} conns x ${o.inFlight} in flight`, `${Math.round(rate).toLocaleString('en-US')} messages/s`];
}

async function latencyScenario(o: Options): Promise<string[]> {
  const socket = await BenchSocket.open(o);
  const payload = o.binary ? Buffer.alloc(o.size, 0xab) : 'x'.repeat(o.size);
  const samples: number[] = [];
  const deadline = performance.now() + o.seconds * 1000;
  let sentAt = 0;
  await new Promise<void>((resolve) => {
    socket.onMessage = () => {
      samples.push(performance.now() - sentAt);
      if (samples.length % 1000 === 0) progress(`latency: ${samples.length.toLocaleString('en-US')} round trips`);
      if (performance.now() >= deadline) {
        resolve();
        return;
      }
      sentAt = performance.now();
      socket.send(payload);
    };
    sentAt = performance.now();
    socket.send(payload);
  });
  await socket.close();
  doneProgress();
  // The first tenth is warm-up.
  const sorted = samples.slice(Math.floor(samples.length / 10)).sort((a, b) => a - b);
  const us = (ms: number): string => `${Math.round(ms * 1000)} µs`;
  return [`round trip ${o.size} B, 1 in flight`, `p50 ${us(percentile(sorted, 50))}, p99 ${us(percentile(sorted, 99))}, max ${us(sorted.at(-1) ?? NaN)}`];
}

async function handshakeScenario(o: Options): Promise<string[]> {
  const concurrency = Math.min(16, o.connections);
  let done = 0;
  const deadline = performance.now() + o.seconds * 1000;
  const started = performance.now();
  const worker = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const socket = await BenchSocket.open(o);
      await socket.close();
      done++;
      if (done % 200 === 0) progress(`handshakes: ${done.toLocaleString('en-US')}`);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  doneProgress();
  return [`connect, upgrade, close; ${concurrency} at a time`, `${Math.round(done / ((performance.now() - started) / 1000)).toLocaleString('en-US')} handshakes/s`];
}

/** Runs `hotline bench`; resolves to the exit code. */
export async function benchCommand(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(args, {
    scenario: { type: 'string', default: 'all' },
    connections: { type: 'string', default: '100' },
    'in-flight': { type: 'string', default: '8' },
    size: { type: 'string', default: '32' },
    binary: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '5' },
    protocol: { type: 'string', multiple: true },
  });
  if (typeof parsed === 'string') {
    process.stderr.write(`hotline: ${parsed}\n${BENCH_USAGE}`);
    return USAGE_ERROR;
  }
  const { values, positionals } = parsed;
  let url: URL;
  try {
    if (positionals.length !== 1) throw new Error('bench takes one URL');
    url = new URL(positionals[0]!);
    if (url.protocol !== 'ws:' && url.protocol !== 'wss:') throw new Error('the URL must be ws:// or wss://');
  } catch (error) {
    process.stderr.write(`hotline: ${(error as Error).message}\n${BENCH_USAGE}`);
    return USAGE_ERROR;
  }
  const numbers = { connections: Number(values.connections), inFlight: Number(values['in-flight']), size: Number(values.size), seconds: Number(values.seconds) };
  for (const [name, value] of Object.entries(numbers)) {
    if (!Number.isInteger(value) || value < (name === 'size' ? 0 : 1)) {
      return usageError(`--${name === 'inFlight' ? 'in-flight' : name} must be a whole number`);
    }
  }
  const options: Options = { url, protocols: values.protocol ?? [], binary: values.binary, ...numbers };
  const scenarios = { echo: echoScenario, latency: latencyScenario, handshakes: handshakeScenario };
  const chosen = values.scenario === 'all' ? Object.keys(scenarios) : [values.scenario];
  const rows: string[][] = [];
  for (const name of chosen) {
    const run = scenarios[name as keyof typeof scenarios];
    if (run === undefined) {
      return usageError(`unknown scenario '${name}' (echo, latency, handshakes, all)`);
    }
    try {
      rows.push(await run(options));
    } catch (error) {
      doneProgress();
      process.stderr.write(`hotline: ${name} failed against ${url.href}: ${(error as Error).message}${hintFor(error)}\n`);
      return 1;
    }
  }
  const width = Math.max(...rows.map((r) => r[0]!.length), 'scenario'.length);
  process.stdout.write(`\n${'scenario'.padEnd(width)}  result\n${'-'.repeat(width)}  ${'-'.repeat(30)}\n`);
  for (const [scenario, result] of rows) process.stdout.write(`${scenario!.padEnd(width)}  ${result}\n`);
  return 0;
}

/** What a refusal that comes from the server's own limits most likely means, for a benchmark. */
function hintFor(error: unknown): string {
  if (!(error instanceof HandshakeError) || error.status !== 429) return '';
  return ' (the server limits connections per client address: start `hotline serve` with --connection-rate-per-address 0 and --max-connections-per-address 0 to measure it from one machine)';
}
