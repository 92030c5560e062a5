/**
 * The DOM's `CloseEvent`, which Node 20 lacks as a global. Built like the browser's: the
 * init dictionary's members are converted as Web IDL converts them, and the attributes are
 * read-only getters on the prototype.
 */

/** The DOM's `EventInit` (Node's typings keep theirs private). */
export interface EventInitDict {
  bubbles?: boolean;
  cancelable?: boolean;
  composed?: boolean;
}

export interface CloseEventInit extends EventInitDict {
  wasClean?: boolean;
  code?: number;
  reason?: string;
}

const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;

/** Web IDL `USVString`: lone surrogates become U+FFFD. */
export function toUsvString(value: unknown): string {
  return String(value).replace(LONE_SURROGATE, '\uFFFD');
}

/** Web IDL `unsigned short`: ToNumber, non-finite to 0, truncate, modulo 2^16. */
function toUnsignedShort(value: unknown): number {
  const n = Number(value);
  if (!Number.isFinite(n)) return 0;
  return ((Math.trunc(n) % 65536) + 65536) % 65536;
}

export class CloseEvent extends Event {
  readonly #wasClean: boolean;
  readonly #code: number;
  readonly #reason: string;

  constructor(type: string, init: CloseEventInit = {}) {
    super(type, init);
    this.#wasClean = Boolean(init.wasClean);
    this.#code = init.code === undefined ? 0 : toUnsignedShort(init.code);
    this.#reason = init.reason === undefined ? '' : toUsvString(init.reason);
  }

  /** Whether the closing handshake completed. */
  get wasClean(): boolean {
    return this.#wasClean;
  }

  /** The close code the server sent, or 1005, 1006 or 1015 (RFC 6455 §7.4.1). */
  get code(): number {
    return this.#code;
  }

  get reason(): string {
    return this.#reason;
  }

  get [Symbol.toStringTag](): string {
    return 'CloseEvent';
  }
}
