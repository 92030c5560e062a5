import { STATUS_CODES } from 'node:http';
import { createInterface } from 'node:readline';
import { ConnectError, WebSocket } from '../node/client.js';
import { CloseCode } from '../protocol/close-code.js';
import { HandshakeError } from '../protocol/errors.js';
import { parseCommandArgs, usageError as fail } from './args.js';
import { connectSession } from './connect-session.js';

export const CONNECT_USAGE = `usage: hotline connect URL [--protocol P ...] [--header 'Name: value' ...] [--json] [--no-deflate] [--transport websocket|sse]

Type a line to send it as a text message. Commands:
  /ping [text]            send a ping (the pong is shown)
  /close [code [reason]]  start the closing handshake
  /quit                   close and exit
At the end of input (Ctrl-D, or a pipe that ends) it waits until 0.3 s pass without a
message, so replies to what was sent are shown, then closes.
Received messages are shown with the time; --json pretty-prints JSON text.
--transport sse talks hotline.v1 over the HTTP fallback session (ws://HOST/ws becomes
http://HOST/sse/session): each line is POSTed as a request, /ping sends a hotline.v1 ping.
A connection that fails says why: refused (nothing listens), the server's HTTP answer to
the upgrade (404 no such endpoint, 401 credentials wanted, 403 refused), or a TLS error.
Exit status: 0 after a clean close, 1 when the connection fails or ends abnormally, 2 for bad usage.
`;

interface Painter {
  (text: string, color: 'in' | 'out' | 'system' | 'error'): string;
}

const COLORS = { in: '\x1b[36m', out: '\x1b[32m', system: '\x1b[33m', error: '\x1b[31m' } as const;

function time(): string {
  return new Date().toISOString().slice(11, 23);
}

/** TLS errors whose fix is to trust the server's certificate authority. */
const UNTRUSTED_CERTIFICATE = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
]);

/**
 * Why a connection never opened, in one line a user can act on, from the error event's
 * `error` (and the close code, which marks a failed TLS handshake).
 */
export function explainConnectFailure(url: URL, cause: unknown, closeCode: number): string {
  const code = (cause as { code?: unknown } | undefined)?.code;
  const message = cause instanceof Error ? cause.message : 'no reason given';
  if (cause instanceof HandshakeError) {
    if (cause.code !== 'UNEXPECTED_STATUS') return `the answer is not a WebSocket upgrade: ${message}`;
    const status = `${cause.status} ${STATUS_CODES[cause.status] ?? ''}`.trimEnd();
    switch (cause.status) {
      case 404:
        return `${status}: no WebSocket endpoint at ${url.pathname} (check the path)`;
      case 401:
        return `${status}: the server wants credentials (such as --header 'Authorization: Bearer TOKEN')`;
      case 403:
        return `${status}: the server refused these credentials, or the Origin (--header 'Origin: URL' sets one)`;
      default:
        return `the server answered ${status} instead of upgrading`;
    }
  }
  if (closeCode === CloseCode.TlsHandshake) {
    const hint = typeof code === 'string' && UNTRUSTED_CERTIFICATE.has(code)
      ? ': the certificate is not trusted (NODE_EXTRA_CA_CERTS=FILE adds a CA)'
      : /wrong version number|packet length too long/i.test(message)
        ? ': is it a plain ws:// server?'
        : '';
    return `TLS error (${typeof code === 'string' ? code : message})${hint}`;
  }
  if (code === 'ECONNREFUSED') return `connection refused: nothing listens on ${url.host}`;
  if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') return `host not found: ${url.hostname}`;
  if (cause instanceof ConnectError) {
    if (cause.code === 'NO_RESPONSE') return `${message} (not a WebSocket server, or a wss:// server reached with ws://?)`;
    return message;
  }
  return `could not connect: ${message}`;
}

/** Runs `hotline connect`: resolves to the exit code once the connection is over. */
export async function connectCommand(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(args, {
    protocol: { type: 'string', multiple: true },
    header: { type: 'string', multiple: true },
    json: { type: 'boolean', default: false },
    'no-deflate': { type: 'boolean', default: false },
    transport: { type: 'string', default: 'websocket' },
  });
  if (typeof parsed === 'string') return fail(`${parsed}\n${CONNECT_USAGE}`);
  const { values, positionals } = parsed;
  if (positionals.length !== 1) return fail(`connect takes one URL\n${CONNECT_USAGE}`);
  const headers: Record<string, string> = {};
  // Origin is the handshake's own field (the client's `origin` option); a user testing an
  // origin check writes it as a header.
  let origin: string | undefined;
  for (const header of values.header ?? []) {
    const colon = header.indexOf(':');
    if (colon <= 0) return fail(`--header must look like 'Name: value', not '${header}'`);
    const name = header.slice(0, colon).trim();
    const value = header.slice(colon + 1).trim();
    if (name.toLowerCase() === 'origin') origin = value;
    else headers[name] = value;
  }
  const colored = process.stdout.isTTY === true && process.env.NO_COLOR === undefined;
  const paint: Painter = (text, color) => (colored ? `${COLORS[color]}${text}\x1b[0m` : text);
  const print = (line: string): void => {
    process.stdout.write(`${line}\n`);
  };
  const json = (text: string): string => {
    if (!values.json) return text;
    try {
      return JSON.stringify(JSON.parse(text), null, 2);
    } catch {
      return text; // not JSON: shown as it came
    }
  };
  if (values.transport !== 'websocket' && values.transport !== 'sse') return fail(`--transport is websocket or sse, not '${values.transport}'\n${CONNECT_USAGE}`);
  if (values.transport === 'sse') {
    if (origin !== undefined) headers.Origin = origin;
    try {
      return await connectSession(positionals[0]!, headers, {
        print: (line) => print(paint(line, line.includes(' < ') ? 'in' : line.includes(' > ') ? 'out' : 'system')),
        error: (line) => void process.stderr.write(`${paint(line, 'error')}\n`),
        time,
        show: json,
      });
    } catch (error) {
      return fail((error as Error).message);
    }
  }

  let ws: WebSocket;
  try {
    ws = new WebSocket(positionals[0]!, values.protocol ?? [], { headers, origin, perMessageDeflate: !values['no-deflate'] });
  } catch (error) {
    return fail((error as Error).message);
  }
  ws.binaryType = 'nodebuffer';
  return new Promise<number>((resolve) => {
    let opened = false;
    // Lines typed (or piped) before the connection is open wait for it.
    const early: string[] = [];
    let inputEnded = false;
    let quietTimer: NodeJS.Timeout | null = null;
    const closeWhenQuiet = (): void => {
      if (quietTimer !== null) clearTimeout(quietTimer);
      quietTimer = setTimeout(() => {
        if (ws.readyState === WebSocket.OPEN) ws.close(CloseCode.NormalClosure);
      }, 300);
    };
    const input = createInterface({ input: process.stdin, terminal: false });
    let failure: unknown;
    ws.addEventListener('error', (event) => {
      failure = event.error;
    });
    ws.addEventListener('open', () => {
      opened = true;
      const details = [ws.protocol && `protocol ${ws.protocol}`, ws.extensions && `extensions ${ws.extensions}`].filter(Boolean);
      print(paint(`${time()} connected to ${ws.url}${details.length > 0 ? ` (${details.join('; ')})` : ''}`, 'system'));
      for (const line of early.splice(0)) handle(line);
      if (inputEnded) closeWhenQuiet();
    });
    ws.addEventListener('message', (event) => {
      if (inputEnded) closeWhenQuiet();
      const data = event.data;
      let shown: string;
      if (typeof data === 'string') {
        shown = json(data);
      } else {
        const bytes = data as Buffer;
        shown = `[binary, ${bytes.length} bytes] ${bytes.subarray(0, 64).toString('hex')}${bytes.length > 64 ? '…' : ''}`;
      }
      print(`${paint(`${time()} <`, 'in')} ${shown}`);
    });
    ws.addEventListener('pong', (event) => {
      print(paint(`${time()} pong ${(event as { data: Buffer }).data.toString()}`, 'system'));
    });
    ws.addEventListener('close', (event) => {
      if (quietTimer !== null) clearTimeout(quietTimer);
      input.close();
      if (!opened) {
        const why = explainConnectFailure(new URL(ws.url), failure, event.code);
        process.stderr.write(paint(`hotline: ${ws.url}: ${why}\n`, 'error'));
        resolve(1);
        return;
      }
      const clean = event.wasClean && event.code !== CloseCode.AbnormalClosure;
      print(paint(`${time()} disconnected: code ${event.code}${event.reason ? ` (${event.reason})` : ''}${clean ? '' : ', not clean'}`, clean ? 'system' : 'error'));
      resolve(clean ? 0 : 1);
    });
    const handle = (line: string): void => {
      if (ws.readyState === WebSocket.CONNECTING) {
        early.push(line);
        return;
      }
      if (ws.readyState !== WebSocket.OPEN) {
        print(paint(`${time()} not connected: line not sent`, 'error'));
        return;
      }
      if (line.startsWith('/ping')) {
        ws.ping(line.slice(5).trim());
        return;
      }
      if (line === '/quit') {
        ws.close(CloseCode.NormalClosure);
        return;
      }
      if (line.startsWith('/close')) {
        const [, code, ...reason] = line.split(' ');
        try {
          ws.close(code === undefined || code === '' ? CloseCode.NormalClosure : Number(code), reason.join(' '));
        } catch (error) {
          print(paint(`${time()} ${(error as Error).message}`, 'error'));
        }
        return;
      }
      ws.send(line);
      print(`${paint(`${time()} >`, 'out')} ${line}`);
    };
    input.on('line', handle);
    input.on('close', () => {
      // End of input: finish the conversation politely, after any lines still waiting.
      inputEnded = true;
      if (ws.readyState === WebSocket.OPEN) closeWhenQuiet();
    });
  });
}
