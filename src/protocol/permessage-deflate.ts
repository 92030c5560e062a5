import { HandshakeError } from './errors.js';
import type { ExtensionOffer } from './extensions-header.js';

/**
 * Negotiation of the permessage-deflate extension (RFC 7692 §5, §7.1) for both roles.
 * Pure: it reads and writes `ExtensionOffer`s and leaves compression to the I/O layer.
 *
 * Window bits 8 are legal on the wire and accepted here. zlib cannot deflate with a
 * 256-byte window, so the I/O layer must send uncompressed messages when its own window
 * is 8; inflating is unaffected.
 */

/** The registered extension name (RFC 7692 §7). */
export const PERMESSAGE_DEFLATE = 'permessage-deflate';

/**
 * What one side of a connection agreed to. windowBits are 8..15.
 *
 * Both roles report the same connection, so the two sides of a negotiation agree on every
 * field except one case: a client that announced `client_no_context_takeover` keeps its
 * word even when the server did not answer it, so the client reports `true` while the
 * server, which only relies on what it answered, reports `false`.
 */
export interface DeflateParams {
  /** The server resets its compression context after each message. */
  serverNoContextTakeover: boolean;
  /** The client resets its compression context after each message. */
  clientNoContextTakeover: boolean;
  /** The server's LZ77 window (log2); 15 when absent. */
  serverMaxWindowBits: number;
  /** The client's LZ77 window (log2); 15 when absent (or when offered without a value and not answered). */
  clientMaxWindowBits: number;
}

/** Server preferences. */
export interface DeflateServerOptions {
  /** Always answer server_no_context_takeover (allowed even when not offered, §7.1.1.1). Default true. */
  serverNoContextTakeover?: boolean;
  /** Answer client_no_context_takeover when the client offered it. Default false. */
  clientNoContextTakeover?: boolean;
  /** Cap on the server's window (8..15): answered as server_max_window_bits=min(offer, this) when lower than 15 or when offered. Default 15. */
  serverMaxWindowBits?: number;
  /** Ask the client for a smaller window (8..15), only possible when the client offered client_max_window_bits; default: leave the client's window as offered. */
  clientMaxWindowBits?: number;
}

/** Client options (what we offer). */
export interface DeflateClientOptions {
  /** Request that the server reset its context after each message. */
  serverNoContextTakeover?: boolean;
  /** Announce that we reset our context after each message (we keep to it whatever the answer). */
  clientNoContextTakeover?: boolean;
  /** Request a smaller server window (8..15). */
  serverMaxWindowBits?: number;
  /**
   * Default true: offer client_max_window_bits without a value (we can use any window the
   * server names). A number also promises never to use a larger window (§7.1.2.2);
   * false leaves the parameter out, so the server cannot limit our window.
   */
  clientMaxWindowBits?: number | boolean;
}

const SERVER_NO_CONTEXT_TAKEOVER = 'server_no_context_takeover';
const CLIENT_NO_CONTEXT_TAKEOVER = 'client_no_context_takeover';
const SERVER_MAX_WINDOW_BITS = 'server_max_window_bits';
const CLIENT_MAX_WINDOW_BITS = 'client_max_window_bits';

/** One permessage-deflate element with its parameters checked against the common rules. */
interface Parsed {
  serverNoContextTakeover: boolean;
  clientNoContextTakeover: boolean;
  /** undefined when absent. */
  serverMaxWindowBits: number | undefined;
  /** undefined when absent, true when given without a value (legal in offers only). */
  clientMaxWindowBits: number | true | undefined;
}

// §7.1.2.1/§7.1.2.2: 1*DIGIT, no leading zero, 8..15. Quoting is already undone by
// parseExtensions, so '"10"' arrives as '10'.
const WINDOW_BITS = /^(?:8|9|1[0-5])$/;

/**
 * Reads the parameters shared by offers and responses. Returns a description of the
 * first problem instead of throwing, since the server declines where the client fails.
 */
function parseParams(element: ExtensionOffer, role: 'offer' | 'response'): Parsed | string {
  const out: Parsed = {
    serverNoContextTakeover: false,
    clientNoContextTakeover: false,
    serverMaxWindowBits: undefined,
    clientMaxWindowBits: undefined,
  };
  const seen = new Set<string>();
  for (const [name, value] of element.params) {
    if (seen.has(name)) return `${name} is given twice`;
    seen.add(name);
    const shown = value === true ? name : `${name}=${value}`;
    switch (name) {
      case SERVER_NO_CONTEXT_TAKEOVER:
      case CLIENT_NO_CONTEXT_TAKEOVER:
        if (value !== true) return `${shown}: this parameter takes no value`;
        if (name === SERVER_NO_CONTEXT_TAKEOVER) out.serverNoContextTakeover = true;
        else out.clientNoContextTakeover = true;
        break;
      case SERVER_MAX_WINDOW_BITS:
        if (value === true || !WINDOW_BITS.test(value)) return `${shown}: the value must be 8 to 15`;
        out.serverMaxWindowBits = Number(value);
        break;
      case CLIENT_MAX_WINDOW_BITS:
        // Without a value it only says "I support this parameter", which an answer cannot say.
        if (value === true) {
          if (role === 'response') return `${shown}: a response must give a value`;
          out.clientMaxWindowBits = true;
        } else {
          if (!WINDOW_BITS.test(value)) return `${shown}: the value must be 8 to 15`;
          out.clientMaxWindowBits = Number(value);
        }
        break;
      default:
        return `unknown parameter ${shown}`;
    }
  }
  return out;
}

function checkWindowBits(what: string, bits: number | undefined): void {
  if (bits !== undefined && !(Number.isInteger(bits) && bits >= 8 && bits <= 15)) {
    throw new RangeError(`${what} must be an integer from 8 to 15, got ${bits}`);
  }
}

/**
 * Server: picks the first acceptable permessage-deflate offer (others ignored). Invalid
 * offers (unknown param, duplicate param, bad value such as server_max_window_bits=7/16/"08"/no
 * value, client_no_context_takeover=value) are DECLINED per §5/§7.1 (skip to the next
 * offer), never thrown. Returns null when none is acceptable. `response` is the single
 * ExtensionOffer to send back.
 *
 * Every valid offer is acceptable: the server can always reset its context or use a
 * smaller window than asked. A requested server_no_context_takeover or
 * server_max_window_bits is always answered, since only answering it accepts it (§7.1.1.1,
 * §7.1.2.1); an offered client_max_window_bits value is echoed (or lowered) so both sides
 * state the same window.
 * @throws RangeError for window bits options outside 8..15.
 */
export function negotiateDeflateServer(
  offers: readonly ExtensionOffer[],
  options: DeflateServerOptions = {},
): {
  /** The agreed parameters, from the server's side, for the connection's deflate context. */
  params: DeflateParams;
  /** The `Sec-WebSocket-Extensions` element to answer with in the 101. */
  response: ExtensionOffer;
} | null {
  checkWindowBits('serverMaxWindowBits', options.serverMaxWindowBits);
  checkWindowBits('clientMaxWindowBits', options.clientMaxWindowBits);
  const serverCap = options.serverMaxWindowBits ?? 15;

  for (const offer of offers) {
    if (offer.name !== PERMESSAGE_DEFLATE) continue;
    const o = parseParams(offer, 'offer');
    if (typeof o === 'string') continue;

    const params: DeflateParams = {
      serverNoContextTakeover: o.serverNoContextTakeover || (options.serverNoContextTakeover ?? true),
      clientNoContextTakeover: o.clientNoContextTakeover && (options.clientNoContextTakeover ?? false),
      serverMaxWindowBits: Math.min(o.serverMaxWindowBits ?? 15, serverCap),
      clientMaxWindowBits: 15,
    };
    const response: ExtensionOffer = { name: PERMESSAGE_DEFLATE, params: [] };
    if (params.serverNoContextTakeover) response.params.push([SERVER_NO_CONTEXT_TAKEOVER, true]);
    if (params.clientNoContextTakeover) response.params.push([CLIENT_NO_CONTEXT_TAKEOVER, true]);
    if (o.serverMaxWindowBits !== undefined || params.serverMaxWindowBits < 15) {
      response.params.push([SERVER_MAX_WINDOW_BITS, String(params.serverMaxWindowBits)]);
    }
    // §7.1.2.2: the answer is only allowed when the client offered the parameter.
    if (o.clientMaxWindowBits !== undefined) {
      const offered = o.clientMaxWindowBits === true ? undefined : o.clientMaxWindowBits;
      params.clientMaxWindowBits = Math.min(offered ?? 15, options.clientMaxWindowBits ?? 15);
      if (offered !== undefined || params.clientMaxWindowBits < 15) {
        response.params.push([CLIENT_MAX_WINDOW_BITS, String(params.clientMaxWindowBits)]);
      }
    }
    return { params, response };
  }
  return null;
}

/**
 * Client: the single offer to send, with parameters in the order of RFC 7692 §7.1.
 * @throws RangeError for window bits outside 8..15.
 */
export function deflateClientOffer(options: DeflateClientOptions = {}): ExtensionOffer {
  checkWindowBits('serverMaxWindowBits', options.serverMaxWindowBits);
  const clientBits = options.clientMaxWindowBits ?? true;
  if (typeof clientBits === 'number') checkWindowBits('clientMaxWindowBits', clientBits);

  const offer: ExtensionOffer = { name: PERMESSAGE_DEFLATE, params: [] };
  if (options.serverNoContextTakeover === true) offer.params.push([SERVER_NO_CONTEXT_TAKEOVER, true]);
  if (options.clientNoContextTakeover === true) offer.params.push([CLIENT_NO_CONTEXT_TAKEOVER, true]);
  if (options.serverMaxWindowBits !== undefined) {
    offer.params.push([SERVER_MAX_WINDOW_BITS, String(options.serverMaxWindowBits)]);
  }
  if (clientBits !== false) {
    offer.params.push([CLIENT_MAX_WINDOW_BITS, clientBits === true ? true : String(clientBits)]);
  }
  return offer;
}

/**
 * Client: checks the server's accepted extensions against what we offered (`offered`:
 * the options given to {@link deflateClientOffer}; undefined means its defaults) and
 * returns what applies, or null when the server did not accept permessage-deflate.
 *
 * The connection must be failed (§5, §7.1) when the response has more than one
 * permessage-deflate element, an unknown or repeated parameter, an invalid value,
 * client_max_window_bits we did not offer or without a value, or when it does not accept
 * what we requested: server_no_context_takeover or server_max_window_bits missing, or a
 * server window above the one requested. Parameters we did not request are otherwise
 * fine: the server may always add server_no_context_takeover, client_no_context_takeover
 * and server_max_window_bits.
 * @throws HandshakeError `BAD_EXTENSION_RESPONSE` with `status` (the response's, usually 101).
 */
export function acceptDeflateResponse(
  responses: readonly ExtensionOffer[],
  offered: DeflateClientOptions | undefined,
  status = 101,
): DeflateParams | null {
  const fail = (message: string): HandshakeError =>
    new HandshakeError('BAD_EXTENSION_RESPONSE', status, `Sec-WebSocket-Extensions: ${PERMESSAGE_DEFLATE} ${message}`);

  const elements = responses.filter((e) => e.name === PERMESSAGE_DEFLATE);
  if (elements.length === 0) return null;
  // We sent one offer, so only one element can accept it.
  if (elements.length > 1) throw fail(`accepted ${elements.length} times`);
  const r = parseParams(elements[0], 'response');
  if (typeof r === 'string') throw fail(`response is invalid: ${r}`);

  const o = offered ?? {};
  const offeredClientBits = o.clientMaxWindowBits ?? true;
  if (o.serverNoContextTakeover === true && !r.serverNoContextTakeover) {
    throw fail('response does not accept the requested server_no_context_takeover');
  }
  if (o.serverMaxWindowBits !== undefined) {
    if (r.serverMaxWindowBits === undefined) {
      throw fail(`response does not accept the requested server_max_window_bits=${o.serverMaxWindowBits}`);
    }
    if (r.serverMaxWindowBits > o.serverMaxWindowBits) {
      throw fail(`response has server_max_window_bits=${r.serverMaxWindowBits}, above the requested ${o.serverMaxWindowBits}`);
    }
  }
  if (r.clientMaxWindowBits !== undefined && offeredClientBits === false) {
    throw fail('response has client_max_window_bits, which was not offered');
  }

  // A value we offered is a promise (§7.1.2.2), kept even if the server names a larger one.
  const ownCap = typeof offeredClientBits === 'number' ? offeredClientBits : 15;
  return {
    serverNoContextTakeover: r.serverNoContextTakeover,
    // Announcing client_no_context_takeover is a promise too (§7.1.1.2).
    clientNoContextTakeover: r.clientNoContextTakeover || o.clientNoContextTakeover === true,
    serverMaxWindowBits: r.serverMaxWindowBits ?? 15,
    clientMaxWindowBits: Math.min(ownCap, typeof r.clientMaxWindowBits === 'number' ? r.clientMaxWindowBits : 15),
  };
}
