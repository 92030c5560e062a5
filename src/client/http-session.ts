/**
 * The SDK's side of the HTTP fallback session (the server's /sse/session): a
 * {@link WebSocketLike} made of a streamed `GET` (downstream: one hotline.v1 text per event)
 * and `POST`s of requests (upstream: newline-delimited JSON, one POST in flight at a time so
 * that the server sees them in the order they were sent). The client drives it exactly as
 * it drives a WebSocket; nothing above the socket knows which one it has. It needs only
 * `fetch` with a streamed body: browsers, workers, Node 18+.
 */
import type { WebSocketLike } from './connection.js';

/** The part of `fetch` the HTTP session uses: the platform's, or your own (`fetch` option). */
export type FetchLike = (
  url: string,
  init: {
    /** `GET` for the stream, `POST` for requests. */
    method: 'GET' | 'POST';
    /** Request headers. */
    headers: Record<string, string>;
    /** A POST's body. */
    body?: string;
    /** Ends the request (and its stream) when aborted. */
    signal: AbortSignal;
    /** Cookies go with same-origin requests. */
    credentials: 'same-origin';
    /** Never from a cache. */
    cache: 'no-store';
  },
) => Promise<{
  /** Whether the status is 2xx. */
  readonly ok: boolean;
  /** The HTTP status. */
  readonly status: number;
  /** The body as a stream of bytes. */
  readonly body: {
    /** A reader of the body's bytes. */
    getReader(): {
      /** The next bytes, or done. */
      read(): Promise<{
        /** Whether the body ended. */
        done: boolean;
        /** The bytes read. */
        value?: Uint8Array;
      }>;
    };
  } | null;
  /** The whole body as text. */
  text(): Promise<string>;
}>;

/** Requests one POST carries at most (the server's default bound is 100). */
const MAX_LINES = 100;
/** Bytes one POST carries at most, past one request (the server's default bound is 256 KiB). */
const MAX_BATCH = 64 * 1024;
const CONNECTING = 0;
const OPEN = 1;
const CLOSED = 3;

/** The URL of the HTTP session beside a WebSocket endpoint: the same host and query (what authenticates it), http(s), path /sse/session. */
export function defaultSessionUrl(wsUrl: string): string {
  const url = new URL(wsUrl);
  url.protocol = url.protocol === 'wss:' || url.protocol === 'https:' ? 'https:' : 'http:';
  url.pathname = '/sse/session';
  url.hash = '';
  return url.href;
}

export class HttpSessionSocket implements WebSocketLike {
  readyState = CONNECTING;
  onopen: WebSocketLike['onopen'] = null;
  onmessage: WebSocketLike['onmessage'] = null;
  onclose: WebSocketLike['onclose'] = null;
  onerror: WebSocketLike['onerror'] = null;
  private readonly abort = new AbortController();
  private session = '';
  private outbox: string[] = [];
  private posting = false;

  constructor(
    private readonly url: string,
    private readonly fetch: FetchLike,
  ) {
    void this.read();
  }

  send(text: string): void {
    if (this.readyState !== OPEN) return;
    this.outbox.push(text);
    // Requests sent in one turn go in one POST.
    if (!this.posting && this.outbox.length === 1) queueMicrotask(() => void this.post());
  }

  close(code = 1000, reason = ''): void {
    this.end(code, reason);
  }

  private async read(): Promise<void> {
    let response: Awaited<ReturnType<FetchLike>>;
    try {
      response = await this.fetch(this.url, { method: 'GET', headers: { accept: 'text/event-stream' }, signal: this.abort.signal, credentials: 'same-origin', cache: 'no-store' });
    } catch (error) {
      return this.failed(error instanceof Error ? error.message : String(error));
    }
    if (!response.ok || response.body === null) {
      // No session here (a server without one, another path): nothing in the body matters,
      // and dropping it unread closes the connection instead of pooling an idle one.
      if (response.status === 404 || response.status === 405) return this.failed(`the server offers no session here (${response.status})`, response.status);
      const text = await response.text().catch(() => '');
      return this.failed(`the server answered ${response.status}${text.trim() === '' ? '' : `: ${text.trim().slice(0, 200)}`}`, response.status);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = '';
    try {
      for (;;) {
        const { done, value } = await reader.read();
        if (done || this.readyState === CLOSED) break;
        buffer += decoder.decode(value, { stream: true });
        let end: number;
        while ((end = buffer.indexOf('\n\n')) !== -1) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          this.event(block);
          if (this.readyState === CLOSED) return;
        }
      }
    } catch {
      // The stream broke (or was aborted): the session is over.
    }
    if (this.readyState === CONNECTING) return this.failed('the stream ended before the session opened');
    this.end(1006, '');
  }

  /** One event of the stream: `session` opens, `close` ends, anything else is a hotline.v1 text. */
  private event(block: string): void {
    let name = 'message';
    const data: string[] = [];
    for (const line of block.split('\n')) {
      if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5));
      else if (line.startsWith('event:')) name = line.slice(6).trim();
    }
    if (data.length === 0) return; // a heartbeat
    const text = data.join('\n');
    if (name === 'session') {
      this.session = (JSON.parse(text) as { session: string }).session;
      this.readyState = OPEN;
      this.onopen?.({});
    } else if (name === 'close') {
      const { code, reason } = JSON.parse(text) as { code: number; reason: string };
      this.end(code, reason);
    } else if (this.readyState === OPEN) this.onmessage?.({ data: text });
  }

  /** Sends what waits, one POST at a time; a refused POST ends the session (the client reconnects). */
  private async post(): Promise<void> {
    if (this.posting || this.readyState !== OPEN || this.outbox.length === 0) return;
    this.posting = true;
    let size = 0;
    let count = 0;
    while (count < this.outbox.length && count < MAX_LINES && (count === 0 || size + this.outbox[count]!.length <= MAX_BATCH)) size += this.outbox[count++]!.length;
    const batch = this.outbox.splice(0, count);
    try {
      const response = await this.fetch(this.url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson', 'hotline-session': this.session },
        body: batch.join('\n'),
        signal: this.abort.signal,
        credentials: 'same-origin',
        cache: 'no-store',
      });
      // Too large is the WebSocket's 1009: the same request would be refused again.
      if (!response.ok) return this.end(response.status === 413 ? 1009 : 1006, `a POST was answered ${response.status}`);
    } catch {
      return this.end(1006, 'a POST failed');
    } finally {
      this.posting = false;
    }
    void this.post();
  }

  private failed(message: string, status?: number): void {
    if (this.readyState === CLOSED) return;
    const error = Object.assign(new Error(message), status === undefined ? {} : { status });
    this.onerror?.({ error, message });
    this.end(1006, '');
  }

  private end(code: number, reason: string): void {
    if (this.readyState === CLOSED) return;
    this.readyState = CLOSED;
    this.outbox = [];
    this.abort.abort();
    this.onclose?.({ code, reason });
  }
}
