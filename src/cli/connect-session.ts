/**
 * `hotline connect --transport sse`: the same conversation as over a WebSocket, through the
 * HTTP fallback session (/sse/session), to try what a client behind a proxy that refuses
 * upgrades gets. Lines typed are POSTed as hotline.v1 requests; each event of the stream is
 * shown as it comes.
 */
import { createInterface } from 'node:readline';
import { defaultSessionUrl, HttpSessionSocket, type FetchLike } from '../client/http-session.js';

/** What the session needs of the command's own printing. */
export interface SessionTerminal {
  print(line: string): void;
  error(line: string): void;
  time(): string;
  /** Pretty-prints JSON text when --json is set. */
  show(text: string): string;
}

/** The session URL for what the user typed: a ws(s):// endpoint becomes its /sse/session; an http(s):// URL is taken as it is. */
export function sessionUrlOf(url: string): string {
  return /^https?:/i.test(url) ? new URL(url).href : defaultSessionUrl(url);
}

/** Runs the conversation; resolves to the exit code (0 after a clean close, 1 otherwise). */
export function connectSession(url: string, headers: Record<string, string>, terminal: SessionTerminal): Promise<number> {
  const sessionUrl = sessionUrlOf(url);
  const withHeaders: FetchLike = (target, init) => fetch(target, { ...init, headers: { ...headers, ...init.headers } });
  const socket = new HttpSessionSocket(sessionUrl, withHeaders);
  let nextId = 1;
  return new Promise<number>((resolve) => {
    let opened = false;
    let failure = '';
    const early: string[] = [];
    let inputEnded = false;
    let quietTimer: NodeJS.Timeout | null = null;
    const closeWhenQuiet = (): void => {
      if (quietTimer !== null) clearTimeout(quietTimer);
      quietTimer = setTimeout(() => socket.close(1000, ''), 300);
    };
    const input = createInterface({ input: process.stdin, terminal: false });
    socket.onerror = (event: { message?: string }) => {
      failure = event.message ?? 'the session failed';
    };
    socket.onopen = () => {
      opened = true;
      terminal.print(`${terminal.time()} connected to ${sessionUrl} (HTTP session)`);
      for (const line of early.splice(0)) handle(line);
      if (inputEnded) closeWhenQuiet();
    };
    socket.onmessage = ({ data }) => {
      if (inputEnded) closeWhenQuiet();
      terminal.print(`${terminal.time()} < ${terminal.show(String(data))}`);
    };
    socket.onclose = ({ code, reason }) => {
      if (quietTimer !== null) clearTimeout(quietTimer);
      input.close();
      if (!opened) {
        terminal.error(`hotline: ${sessionUrl}: ${failure || 'the session ended before it opened'}`);
        return resolve(1);
      }
      const clean = code === 1000;
      const line = `${terminal.time()} disconnected: code ${code}${reason ? ` (${reason})` : ''}`;
      terminal.print(line);
      resolve(clean ? 0 : 1);
    };
    const handle = (line: string): void => {
      if (socket.readyState === 0) return void early.push(line);
      if (socket.readyState !== 1) return terminal.error(`${terminal.time()} not connected: line not sent`);
      if (line === '/quit' || line.startsWith('/close')) return socket.close(1000, '');
      // A ping is hotline.v1's own here: the session has no WebSocket ping.
      const text = line.startsWith('/ping') ? JSON.stringify({ op: 'ping', id: nextId++ }) : line;
      socket.send(text);
      terminal.print(`${terminal.time()} > ${text}`);
    };
    input.on('line', handle);
    input.on('close', () => {
      inputEnded = true;
      if (socket.readyState === 1) closeWhenQuiet();
    });
  });
}
