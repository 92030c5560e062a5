/**
 * The WHATWG `bufferedAmount`: bytes of application data passed to `send()` and not yet
 * handed to the operating system. Each transmitted message is recorded with the offset, in
 * the stream of bytes written to the socket, at which its frames end; it leaves the count
 * once the socket has written past that offset. Data sent once the closing handshake has
 * started is counted and never leaves, as the spec says.
 */
export class BufferedAmount {
  /** The bytes counted now (settle first for an up-to-date figure). */
  amount = 0;
  private inFlight: Array<{ end: number; size: number }> = [];
  private head = 0;

  /** `size` bytes were passed to send(). */
  add(size: number): void {
    this.amount += size;
  }

  /** A message of `size` bytes was queued; its frames end at `end` in the written stream. */
  transmitted(end: number, size: number): void {
    this.inFlight.push({ end, size });
  }

  /** The socket has written `written` bytes of the stream: messages that end there leave the count. */
  settle(written: number): void {
    const inFlight = this.inFlight;
    let head = this.head;
    while (head < inFlight.length && inFlight[head]!.end <= written) {
      this.amount -= inFlight[head]!.size;
      head++;
    }
    if (head === inFlight.length) {
      this.inFlight = [];
      head = 0;
    } else if (head > 1024 && head * 2 > inFlight.length) {
      this.inFlight = inFlight.slice(head);
      head = 0;
    }
    this.head = head;
  }
}
