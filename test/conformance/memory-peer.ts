/**
 * hotline's client role without sockets: the sans-I/O `WebSocketProtocol` in role
 * 'client', with a handler that echoes every message, driven by an in-memory link. Each
 * write of the harness is one `receiveData` call, so chops and syncs reach the protocol
 * exactly as the case prescribes; what the protocol queues is handed back at once.
 */
import { Buffer } from 'node:buffer';
import { WebSocketProtocol } from '../../src/protocol/websocket-protocol.js';
import { maxPayloadFor, type ConnectOptions, type Link, type LinkListener, type Peer } from './harness.js';

class MemoryLink implements Link {
  private closed = false;
  private ended = false;
  readonly protocol: WebSocketProtocol;

  constructor(
    private readonly listener: LinkListener,
    maxPayload: number,
  ) {
    const protocol: WebSocketProtocol = new WebSocketProtocol(
      {
        onMessage(data: Buffer, binary: boolean): void {
          if (protocol.canSend) protocol.send(data, { binary });
        },
      },
      { role: 'client', maxPayload },
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
    return Promise.resolve(new MemoryLink(listener, maxPayloadFor(options.limit)));
  }
}
