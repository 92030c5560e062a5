/**
 * One SSE stream as the channel hub sees it: a connection (a {@link TransportClient}) whose
 * hotline.v1 answers and messages are written as events. Until every `sub` is answered it
 * writes nothing (the endpoint may still refuse with an HTTP status); then the `subscribed`
 * events, then what arrived meanwhile, then live events. Each event's id is the stream's
 * position in all its channels after it (sse-position.ts).
 */
import type { ChannelIdentity } from '../channels/index.js';
import type { ErrorCode } from '../wire/index.js';
import type { TransportClient } from './channels.js';
import { dataField, EventStream, type StreamLimits, type StreamResponse } from './event-stream.js';
import { channelListTag, encodePart, type ChannelPosition } from './sse-position.js';

/** A `sub`'s answer: the position it starts from, or why it was refused. */
type Answer = { epoch: string; offset: number; recovered: boolean } | { code: ErrorCode; message: string };

/** The head of every event stream, a started one or a refusal told in one (sse.ts). */
export const STREAM_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  // no-transform: a proxy that compresses would hold events back to fill its blocks.
  'cache-control': 'no-cache, no-transform',
  'x-accel-buffering': 'no',
} as const;

const MSG_PREFIX = '{"op":"msg","ch":"';

export class SseStream<A> extends EventStream<A> implements TransportClient<A> {
  private started = false;
  private readonly index = new Map<string, number>();
  private readonly tag: string;
  private readonly epochs: string[];
  private readonly parts: string[];
  private eventId = '';
  private idStale = true;
  /** Whether the stream came with a position for each channel (its `subscribed` says `recovering`). */
  private recovering: boolean[] = [];
  private since: Array<ChannelPosition | null> = [];
  private readonly answers: Array<Answer | undefined>;
  private unanswered: number;
  private onAnswered: (() => void) | null = null;
  /** Before the start: what the hub sent once answered (texts), and their size. */
  private early: string[] | null = [];
  private earlySize = 0;

  constructor(
    /** The client id the hub knows it by (`NODE.sN`). */
    id: string,
    identity: ChannelIdentity<A>,
    private readonly channels: readonly string[],
    res: StreamResponse,
    limits: StreamLimits,
    onSlow: () => void,
  ) {
    super(id, identity, res, limits, onSlow);
    channels.forEach((name, i) => this.index.set(name, i));
    this.tag = channelListTag(channels);
    this.epochs = channels.map(() => '');
    this.parts = channels.map(() => '');
    this.answers = channels.map(() => undefined);
    this.unanswered = channels.length;
  }

  /**
   * Sends a `sub` for each channel (with `since` where the resumed id has a position) and
   * resolves with the refusals, null for each accepted one, once all are answered.
   * `resumed`: whether the request carried an id; `positions` null when that id was written
   * for another channel list, so each channel is subscribed afresh and told it was not recovered.
   */
  subscribe(resumed: boolean, positions: Array<ChannelPosition | null> | null, send: (text: string) => void): Promise<Array<{ code: ErrorCode; message: string } | null>> {
    this.since = this.channels.map((_, i) => positions?.[i] ?? null);
    this.recovering = this.channels.map((_, i) => resumed && (positions === null || positions[i] !== null));
    const done = new Promise<Array<{ code: ErrorCode; message: string } | null>>((resolve) => {
      this.onAnswered = () => resolve(this.answers.map((a) => (a === undefined || 'epoch' in a ? null : a)));
    });
    this.channels.forEach((ch, i) => {
      const since = this.since[i];
      send(JSON.stringify(since === null || since === undefined ? { op: 'sub', id: i, ch } : { op: 'sub', id: i, ch, since }));
    });
    return done;
  }

  /** Every `sub` was accepted: the headers, the retry hint, a `subscribed` event per channel, and what came meanwhile. */
  start(retry: number): void {
    const { res } = this;
    res.writeHead(200, STREAM_HEADERS);
    const answers = this.answers as Array<{ epoch: string; offset: number; recovered: boolean }>;
    answers.forEach((answer, i) => {
      this.epochs[i] = answer.epoch;
      // A recovered channel replays from where the client stood; the others go on from the answer.
      this.setPart(i, answer.recovered ? this.since[i]!.offset : answer.offset);
    });
    // Every position is known before the first event: each id resumes every channel.
    let head = `retry: ${retry}\n\n`;
    this.channels.forEach((ch, i) => {
      const { epoch, offset, recovered } = answers[i]!;
      const data = { ch, epoch, offset, recovering: this.recovering[i], recovered };
      head += `event: subscribed\nid: ${this.currentId()}\ndata: ${JSON.stringify(data)}\n\n`;
    });
    this.started = true;
    res.write(head);
    const early = this.early!;
    this.early = null;
    this.earlySize = 0;
    for (const text of early) this.receive(text);
    this.progressed();
  }

  // The hub's side (ChannelClient).

  send(text: string): void {
    if (this.closed) return;
    if (this.tooSlow()) return;
    this.receive(text);
  }

  sendReliable(text: string): void {
    if (!this.closed) this.receive(text);
  }

  deliver(text: string): boolean {
    if (this.closed || this.tooSlow()) return false;
    this.receive(text);
    return true;
  }

  override get bufferedAmount(): number {
    return this.started ? this.res.writableLength : this.earlySize;
  }

  /** Ends the stream with an `event: close` saying why (the hub's, or the endpoint's). */
  override close(code: number, reason: string): void {
    if (this.closed) return;
    if (this.started) return super.close(code, reason);
    // Not started: the endpoint answers with the sub answers it has; anything pending settles now.
    this.stop();
    this.failPending('internal', `unavailable: ${reason}`);
  }

  /** The response closed (the client went, or the stream ended): nothing more is written. */
  override gone(): void {
    this.failPending('internal', 'unavailable: the client went away');
    super.gone();
  }

  protected override get holding(): boolean {
    return !this.started;
  }

  /** A hotline.v1 text from the hub, as an event (or, for a `sub`'s answer, as the stream's start). */
  private receive(text: string): void {
    if (!this.started) {
      if (text.startsWith('{"op":"ok"') || text.startsWith('{"op":"err"')) return this.answer(text);
      this.early!.push(text);
      this.earlySize += text.length;
      return;
    }
    if (text.startsWith(MSG_PREFIX)) return this.message(text);
    const op = text.slice(7, text.indexOf('"', 7));
    switch (op) {
      case 'join':
      case 'update':
      case 'leave':
        return void this.res.write(`event: ${op}\n${dataField(text)}`);
      // No offset, so no id: Last-Event-ID stays the position of the last channel message.
      case 'ephemeral':
        return void this.res.write(`event: ephemeral\n${dataField(text)}`);
      case 'message':
        return void this.res.write(`event: direct\n${dataField(text)}`);
      case 'unsub':
        return this.unsubscribed(text);
      // A `call` needs a reply a stream cannot send: the server's call times out, as with a
      // client that does not know calls. Answers of requests a stream never makes do not come.
    }
  }

  /** A channel message: `{"op":"msg","ch":"NAME","offset":N,…}` as encodeMsg writes it. */
  private message(text: string): void {
    const end = text.indexOf('"', MSG_PREFIX.length);
    const index = this.index.get(text.slice(MSG_PREFIX.length, end));
    if (index === undefined) return;
    const offsetAt = end + 11; // past `","offset":`
    const offset = Number(text.slice(offsetAt, text.indexOf(',', offsetAt)));
    this.setPart(index, offset);
    this.res.write(`id: ${this.currentId()}\n${dataField(text)}`);
  }

  /** The server ended a subscription: the event, and the stream ends once none is left. */
  private unsubscribed(text: string): void {
    const push = JSON.parse(text) as { ch: string };
    this.res.write(`event: unsubscribed\n${dataField(text)}`);
    const index = this.index.get(push.ch);
    if (index !== undefined) this.index.delete(push.ch);
    if (this.index.size === 0) this.close(1000, 'no subscriptions left');
  }

  private answer(text: string): void {
    const reply = JSON.parse(text) as { op: 'ok' | 'err'; id?: number; epoch?: string; offset?: number; recovered?: boolean; code?: ErrorCode; message?: string };
    const i = reply.id;
    if (i === undefined || this.answers[i] !== undefined || i >= this.answers.length) return;
    this.answers[i] =
      reply.op === 'ok' ? { epoch: reply.epoch!, offset: reply.offset!, recovered: reply.recovered === true } : { code: reply.code!, message: reply.message! };
    if (--this.unanswered === 0) this.settle();
  }

  private failPending(code: ErrorCode, message: string): void {
    if (this.onAnswered === null) return;
    for (let i = 0; i < this.answers.length; i++) this.answers[i] ??= { code, message };
    this.unanswered = 0;
    this.settle();
  }

  private settle(): void {
    const settle = this.onAnswered;
    this.onAnswered = null;
    settle?.();
  }

  private setPart(index: number, offset: number): void {
    this.parts[index] = encodePart({ epoch: this.epochs[index]!, offset });
    this.idStale = true;
  }

  private currentId(): string {
    if (this.idStale) {
      this.eventId = `${this.tag},${this.parts.join(',')}`;
      this.idStale = false;
    }
    return this.eventId;
  }
}
