/**
 * The downstream of one HTTP session (http-session.ts) as the channel hub sees it: a
 * connection (a {@link TransportClient}) whose every hotline.v1 text (answers, messages,
 * presence, pushes, server calls) is one `data:` event, in the order the hub sent them.
 * Unlike an /sse stream it translates nothing: the SDK reads the same texts as over /ws.
 * Live traffic past the backpressure limit closes the session (event `close`, 1013): the
 * SDK opens another and recovers, so a slow reader is never silently thinned.
 */
import type { TransportClient } from './channels.js';
import { dataField, EventStream } from './event-stream.js';

/** An HTTP session's downstream; its id is `NODE.hN`. */
export class SessionStream<A> extends EventStream<A> implements TransportClient<A> {
  /** POST bodies being read for this session now. */
  posting = 0;

  /** The headers, and the `session` event that tells the client the id its POSTs carry. */
  start(session: string): void {
    this.res.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      // no-transform: a proxy that compresses would hold events back to fill its blocks.
      'cache-control': 'no-cache, no-store, no-transform',
      'x-accel-buffering': 'no',
    });
    this.res.write(`event: session\ndata: ${JSON.stringify({ session, client: this.id })}\n\n`);
  }

  send(text: string): void {
    if (!this.closed && !this.tooSlow()) this.res.write(dataField(text));
  }

  sendReliable(text: string): void {
    if (!this.closed) this.res.write(dataField(text));
  }

  deliver(text: string): boolean {
    if (this.closed || this.tooSlow()) return false;
    this.res.write(dataField(text));
    return true;
  }
}
