import type { Buffer } from 'node:buffer';
import { connect as netConnect, isIP, type Socket } from 'node:net';
import { connect as tlsConnect, type ConnectionOptions } from 'node:tls';
import { formatExtensions, type ExtensionOffer } from '../protocol/extensions-header.js';
import { buildClientRequest, validateServerResponse } from '../protocol/handshake.js';
import { HttpHeadParser } from '../protocol/http-head.js';
import { acceptDeflateResponse, deflateClientOffer, type DeflateClientOptions } from '../protocol/index.js';
import { ZlibDeflateCodec, type PerMessageDeflateOptions } from './deflate.js';
import { sharedOnRead } from './shared-reads.js';

/** The client's permessage-deflate: what it offers, and how it compresses. */
export interface ClientDeflateOptions extends DeflateClientOptions, PerMessageDeflateOptions {}

/** Why the Node client's handshake failed without a response that says why. */
export type ConnectErrorCode =
  /** No response within `handshakeTimeout`. */
  | 'HANDSHAKE_TIMEOUT'
  /** The server closed the connection without a response. */
  | 'NO_RESPONSE'
  /** `close()` was called before the connection opened. */
  | 'ABORTED';

/**
 * A connection attempt that failed with no HTTP status to tell (those are `HandshakeError`s,
 * and socket failures keep Node's own error and `code`, such as ECONNREFUSED).
 */
export class ConnectError extends Error {
  /** Always `'ConnectError'`. */
  override readonly name = 'ConnectError';
  constructor(
    /** Why: no answer in time, none at all, or aborted by `close()`. */
    readonly code: ConnectErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Connects to the URL's host and port (ws: or wss:), over TLS for wss: with SNI for a host name. */
export function dial(url: URL, tlsOptions: ConnectionOptions, onChunk: (chunk: Buffer) => void): Socket {
  const secure = url.protocol === 'wss:';
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  const port = url.port === '' ? (secure ? 443 : 80) : Number(url.port);
  // Plain TCP reads into the process's shared buffer (see shared-reads.ts); TLS through 'data'.
  if (!secure) return netConnect({ host, port, onread: sharedOnRead(onChunk) });
  // SNI takes host names only (RFC 6066 §3).
  const socket = tlsConnect({ ...tlsOptions, host, port, servername: tlsOptions.servername ?? (isIP(host) === 0 ? host : undefined) });
  socket.on('data', onChunk);
  return socket;
}

/** What the server agreed to in its 101. */
export interface HandshakeResult {
  protocol: string;
  /** Set when permessage-deflate was accepted. */
  codec: ZlibDeflateCodec | null;
  /** Bytes that came after the response head (the first frames). */
  rest: Uint8Array;
}

/**
 * The client's opening handshake (RFC 6455 §4.1, with RFC 7692's offer): the request to
 * write, then the server's response read and checked as it arrives.
 */
export class ClientHandshake {
  readonly request: string;
  private readonly key: string;
  private readonly extensions: ExtensionOffer[];
  private readonly parser = new HttpHeadParser('response');

  constructor(
    url: URL,
    private readonly protocols: readonly string[],
    private readonly deflate: ClientDeflateOptions | null,
    options: { origin?: string; headers?: Readonly<Record<string, string>> },
  ) {
    this.extensions = deflate === null ? [] : [deflateClientOffer(deflate)];
    // Host carries the port only when it is not the scheme's default; the URL parser already
    // dropped a default port, so `host` is exactly the field's value.
    const { key, request } = buildClientRequest({
      host: url.host,
      path: url.pathname + url.search,
      protocols,
      origin: options.origin,
      headers: options.headers,
      extensions: this.extensions,
    });
    this.key = key;
    this.request = request;
  }

  /**
   * Takes bytes of the response: null until its head is complete, then what the server
   * agreed to. Throws for a malformed head, a status other than 101, a wrong accept key, or
   * a subprotocol or extension that was not offered.
   */
  push(chunk: Buffer): HandshakeResult | null {
    const head = this.parser.push(chunk);
    if (head === null) return null;
    const accepted = validateServerResponse(head, { key: this.key, protocols: this.protocols, extensions: this.extensions });
    const params = this.deflate === null ? null : acceptDeflateResponse(accepted.extensions, this.deflate, head.status);
    // `extensions` reports the header as the server sent it (RFC 6455 §4.1, WHATWG).
    const header = head.headers.get('sec-websocket-extensions') ?? formatExtensions(accepted.extensions);
    const codec = params === null ? null : new ZlibDeflateCodec(params, 'client', header, this.deflate!);
    return { protocol: accepted.protocol, codec, rest: this.parser.rest };
  }
}
