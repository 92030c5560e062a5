/**
 * hotline's client role without sockets: the sans-I/O `WebSocketProtocol` in role
 * 'client', with a handler that echoes every message, driven by an in-memory link. Each
 * write of the harness is one `receiveData` call, so chops and syncs reach the protocol
 * exactly as the case prescribes; what the protocol queues is handed back at once.
 *
 * In a permessage-deflate case there is no HTTP handshake: the peer makes the offer the
 * case names with hotline's `deflateClientOffer`, takes the case's response through
 * hotline's `acceptDeflateResponse`, as the Node client does, and runs the protocol with
 * hotline's zlib codec. It compresses every echo (the Node client, tested over TCP,
 * compresses from 1 KiB on), so both of hotline's ways of sending are exercised.
 */
import { Buffer } from 'node:buffer';
import { WebSocketProtocol } from '../../src/protocol/websocket-protocol.js';
import { formatExtensions, parseExtensions } from '../../src/protocol/extensions-header.js';
import { acceptDeflateResponse, deflateClientOffer } from '../../src/protocol/permessage-deflate.js';
import { ZlibDeflateCodec } from '../../src/node/deflate.js';
import { clientOptionsFor, formatDeflateSpec } from './deflate.js';
import { maxPayloadFor, type ConnectOptions, type Link, type LinkListener, type Peer } from './harness.js';

class MemoryLink implements Link {
  private closed = false;
  private ended = false;
  readonly protocol: WebSocketProtocol;

  constructor(
    private readonly listener: LinkListener,
    maxPayload: number,
    codec: ZlibDeflateCodec | undefined,
    readonly extensions: string | null,
  ) {
    const protocol: WebSocketProtocol = new WebSocketProtocol(
      {
        onMessage(data: Buffer, binary: boolean): void {
          if (protocol.canSend) protocol.send(data, { binary, compress: true });
        },
      },
      { role: 'client', maxPayload, deflate: codec },
    );
    this.protocol = protocol;
  }

  write(bytes: Buffer): Promise<void> {
    if (this.closed || this.ended) return Promise.resolve();
    // The protocol unmasks in place and keeps views: give it its own copy.
    this.protocol.receiveData(Buffer.from(bytes));
    this.flush();
    return Promise.resolve();
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (!this.ended) this.protocol.receiveEof();
  }

  private flush(): void {
    for (const chunk of this.protocol.takeOutgoing()) this.listener.data(chunk);
    if (this.protocol.shouldCloseTransport && !this.ended) {
      this.ended = true;
      this.listener.end();
    }
  }
}

/** hotline's client role over an in-memory transport. */
export class MemoryClientPeer implements Peer {
  readonly role = 'client' as const;

  connect(listener: LinkListener, options: ConnectOptions): Promise<Link> {
    const maxPayload = maxPayloadFor(options.limit);
    const setup = options.deflate;
    if (setup === undefined) return Promise.resolve(new MemoryLink(listener, maxPayload, undefined, null));
    const clientOptions = clientOptionsFor(setup.offer);
    const offer = formatExtensions([deflateClientOffer(clientOptions)]);
    if (setup.response === null) return Promise.resolve(new MemoryLink(listener, maxPayload, undefined, offer));
    const response = formatDeflateSpec(setup.response);
    const params = acceptDeflateResponse(parseExtensions(response), clientOptions);
    if (params === null) return Promise.reject(new Error(`hotline's client did not take ${JSON.stringify(response)}`));
    const codec = new ZlibDeflateCodec(params, 'client', response);
    return Promise.resolve(new MemoryLink(listener, maxPayload, codec, offer));
  }
}
