// A response for unit tests of the HTTP stream endpoints (/sse, /sse/session): what they write
// is kept in `body`, and the test sets `writableLength` (the bytes its client has not read)
// and emits `drain` itself.
import { EventEmitter } from 'node:events';

export class FakeResponse extends EventEmitter {
  status = 0;
  headers: Record<string, string | undefined> = {};
  body = '';
  writableLength = 0;
  writableEnded = false;
  headersSent = false;
  destroyed = false;
  writeHead(status: number, headers: Record<string, string | undefined>): this {
    this.status = status;
    this.headers = headers;
    this.headersSent = true;
    return this;
  }
  write(chunk: string): boolean {
    this.body += chunk;
    return true;
  }
  end(chunk?: string): this {
    if (chunk !== undefined) this.body += chunk;
    this.writableEnded = true;
    return this;
  }
  destroy(): this {
    if (!this.destroyed) {
      this.destroyed = true;
      this.emit('close');
    }
    return this;
  }
}
