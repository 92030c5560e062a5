/**
 * The server's side of the wire: each function returns the text of one frame, equal to
 * JSON.stringify of the message object. The ones that carry channel data take it already
 * serialized, so a publish is serialized once however many subscribers receive it.
 */
import type { ErrorCode } from './codes.js';
import type { AuthOk, EphemeralPubOk, HistoryOk, Json, Member, PresenceOk, PubOk, RpcOk, SubOk } from './messages.js';

/**
 * The fields of an ok reply besides `op` and `id`, for any request op. An unsub's reply has
 * none; spelled as an index signature of `never` because `{}` would accept any object.
 */
export type OkFields =
  | Omit<SubOk, 'op' | 'id'>
  | Omit<PubOk, 'op' | 'id'>
  | Omit<EphemeralPubOk, 'op' | 'id'>
  | Omit<PresenceOk, 'op' | 'id'>
  | Omit<HistoryOk, 'op' | 'id'>
  | Omit<RpcOk, 'op' | 'id'>
  | Omit<AuthOk, 'op' | 'id'>
  | { [field: string]: never };

/** One history entry with its data already serialized. */
export interface EncodedHistoryEntry {
  offset: number;
  dataJson: string;
}

/** Serializes channel data once for {@link encodeMsg} and {@link encodeHistoryOk}. */
export function encodeData(data: Json): string {
  return JSON.stringify(data);
}

export function encodeOk(id: number, fields: OkFields = {}): string {
  return JSON.stringify({ op: 'ok', id, ...fields });
}

/** An `err`; without an id when the request could not be read far enough to find one. */
export function encodeErr(id: number | undefined, code: ErrorCode, message: string): string {
  return JSON.stringify(id === undefined ? { op: 'err', code, message } : { op: 'err', id, code, message });
}

/** The server ending a subscription by itself (see {@link UnsubPush}). */
export function encodeUnsubPush(ch: string, code: ErrorCode, message: string): string {
  return JSON.stringify({ op: 'unsub', ch, code, message });
}

export function encodePong(id: number): string {
  return `{"op":"pong","id":${JSON.stringify(id)}}`;
}

/** A channel message around data serialized once by the caller (see {@link encodeData}). */
export function encodeMsg(ch: string, offset: number, dataJson: string): string {
  return `{"op":"msg","ch":${JSON.stringify(ch)},"offset":${JSON.stringify(offset)},"data":${dataJson}}`;
}

/** A server's call to a client's handler (see {@link ServerCall}), its params serialized by the caller. */
export function encodeCall(call: number, method: string, paramsJson: string, timeout: number): string {
  return `{"op":"call","call":${JSON.stringify(call)},"method":${JSON.stringify(method)},"params":${paramsJson},"timeout":${JSON.stringify(timeout)}}`;
}

/** A message to one connection, outside any channel (see {@link DirectMessage}). */
export function encodeDirectMessage(dataJson: string): string {
  return `{"op":"message","data":${dataJson}}`;
}

export function encodeJoin(ch: string, member: Member): string {
  return JSON.stringify({ op: 'join', ch, member });
}

export function encodeLeave(ch: string, member: Member): string {
  return JSON.stringify({ op: 'leave', ch, member });
}

/** A member's presence state changed (see {@link Update}). */
export function encodeUpdate(ch: string, member: Member): string {
  return JSON.stringify({ op: 'update', ch, member });
}

/** An ephemeral message around data serialized once by the caller, with its publisher's client id (see {@link EphemeralMessage}). */
export function encodeEphemeral(ch: string, dataJson: string, client?: string): string {
  const from = client === undefined ? '' : `"client":${JSON.stringify(client)},`;
  return `{"op":"ephemeral","ch":${JSON.stringify(ch)},${from}"data":${dataJson}}`;
}

/** The ok reply to a history request, from entries whose data is already serialized. */
export function encodeHistoryOk(id: number, epoch: string, entries: readonly EncodedHistoryEntry[], more = false): string {
  let messages = '';
  for (let i = 0; i < entries.length; i++) messages += `${i === 0 ? '' : ','}${encodeHistoryEntry(entries[i]!)}`;
  return `{"op":"ok","id":${JSON.stringify(id)},"epoch":${JSON.stringify(epoch)},"messages":[${messages}]${more ? ',"more":true' : ''}}`;
}

/** One entry of a history reply, as {@link encodeHistoryOk} writes it. */
export function encodeHistoryEntry(entry: EncodedHistoryEntry): string {
  return `{"offset":${JSON.stringify(entry.offset)},"data":${entry.dataJson}}`;
}

/**
 * Bytes of `text` in UTF-8, as it goes over the wire (a string's length counts UTF-16
 * code units: a character beyond ASCII takes two to four bytes for one unit or two).
 */
export function utf8Length(text: string): number {
  let bytes = 0;
  for (let i = 0; i < text.length; i++) {
    const unit = text.charCodeAt(i);
    if (unit < 0x80) bytes += 1;
    else if (unit < 0x800) bytes += 2;
    else if (unit >= 0xd800 && unit <= 0xdbff && i + 1 < text.length && (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00) {
      bytes += 4; // a surrogate pair: one character beyond the BMP
      i++;
    } else bytes += 3; // the rest of the BMP, and a lone surrogate (written as U+FFFD)
  }
  return bytes;
}
