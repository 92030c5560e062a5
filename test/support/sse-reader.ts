// An SSE client for tests: GET a text/event-stream with node:http and parse its events as
// the HTML standard's EventSource does (fields id, event, data, retry; comments counted),
// keeping every event and the raw text, so tests assert what a client sees on the wire.
import { request, type IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';
import { waitFor, type WaitOptions } from './wait.js';

export interface SseEvent {
  /** `message` when the event names none. */
  event: string;
  data: string;
  /** The last id seen up to this event (EventSource's lastEventId). */
  id: string;
}

export class SseReader {
  readonly events: SseEvent[] = [];
  /** Comment lines (heartbeats) seen. */
  comments = 0;
  retry: number | null = null;
  raw = '';
  ended = false;
  lastEventId = '';
  private buffer = '';
  private data: string[] = [];
  private type = '';

  private constructor(
    readonly response: IncomingMessage,
    readonly socket: Socket,
  ) {
    response.setEncoding('utf8');
    response.on('data', (chunk: string) => this.feed(chunk));
    const end = (): void => {
      this.ended = true;
    };
    response.on('end', end);
    response.on('close', end);
    response.on('error', end);
  }

  /**
   * Opens `url` and resolves once the response head arrived (any status: check `status`).
   * `localAddress`: the address to connect from (any of 127.0.0.0/8 on Linux), so a test can be several clients.
   */
  static open(url: string, headers: Record<string, string> = {}, localAddress?: string): Promise<SseReader> {
    return new Promise((resolve, reject) => {
      const req = request(url, { headers: { accept: 'text/event-stream', ...headers }, agent: false, localAddress }, (res) => resolve(new SseReader(res, req.socket!)));
      req.on('error', reject);
      req.end();
    });
  }

  get status(): number {
    return this.response.statusCode ?? 0;
  }

  /** Channel messages (events without a name) as the hotline.v1 `msg` objects they carry. */
  messages(): Array<{ ch: string; offset: number; data: unknown }> {
    return this.events.filter((e) => e.event === 'message').map((e) => JSON.parse(e.data) as { ch: string; offset: number; data: unknown });
  }

  named(event: string): Array<Record<string, unknown>> {
    return this.events.filter((e) => e.event === event).map((e) => JSON.parse(e.data) as Record<string, unknown>);
  }

  async until(check: (reader: SseReader) => boolean, what: string, options: number | WaitOptions = {}): Promise<void> {
    await waitFor(() => check(this), what, typeof options === 'number' ? { ms: options, state: () => this.raw.slice(-500) } : { state: () => this.raw.slice(-500), ...options });
  }

  /** The whole body, for a refused request. */
  async text(): Promise<string> {
    await waitFor(() => this.ended, 'the end of the response');
    return this.raw;
  }

  close(): void {
    this.response.destroy();
    this.socket.destroy();
  }

  private feed(chunk: string): void {
    this.raw += chunk;
    this.buffer += chunk;
    for (;;) {
      const match = /\r\n|\r|\n/.exec(this.buffer);
      if (match === null) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      this.line(line);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length > 0) this.events.push({ event: this.type || 'message', data: this.data.join('\n'), id: this.lastEventId });
      this.data = [];
      this.type = '';
      return;
    }
    if (line.startsWith(':')) {
      this.comments++;
      return;
    }
    const colon = line.indexOf(':');
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'data') this.data.push(value);
    else if (field === 'event') this.type = value;
    else if (field === 'id' && !value.includes('\0')) this.lastEventId = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.retry = Number(value);
  }
}
