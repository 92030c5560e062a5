// What the protocol tests record of a WebSocketProtocol's reports besides messages (each
// test records messages its own way: as text, or as hex).
import type { ProtocolErrorCode } from '../../src/protocol/errors.js';
import type { ProtocolHandler } from '../../src/protocol/websocket-protocol.js';

export type ControlEvent =
  | { type: 'ping'; hex: string }
  | { type: 'pong'; hex: string }
  | { type: 'close'; code: number; reason: string }
  | { type: 'error'; code: ProtocolErrorCode; closeCode: number };

/** Handlers that push pings, pongs, closes and protocol errors to `events`. */
export function recordControl(events: { push(event: ControlEvent): unknown }): Omit<ProtocolHandler, 'onMessage'> {
  return {
    onPing: (payload) => events.push({ type: 'ping', hex: payload.toString('hex') }),
    onPong: (payload) => events.push({ type: 'pong', hex: payload.toString('hex') }),
    onClose: (info) => events.push({ type: 'close', code: info.code, reason: info.reason }),
    onProtocolError: (error) => events.push({ type: 'error', code: error.code, closeCode: error.closeCode }),
  };
}
