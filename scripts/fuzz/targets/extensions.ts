// extensions: parseExtensions on Sec-WebSocket-Extensions values, then negotiateDeflateServer
// and acceptDeflateResponse on what it parsed; the two codecs a negotiation makes must
// inflate each other's messages.
import { Buffer } from 'node:buffer';
import {
  acceptDeflateResponse,
  deflateClientOffer,
  negotiateDeflateServer,
  type DeflateClientOptions,
  type DeflateParams,
  type DeflateServerOptions,
  type HandshakeErrorCode,
} from '../../../src/protocol/index.js';
import { formatExtensions, parseExtensions, type ExtensionOffer } from '../../../src/protocol/extensions-header.js';
import { ZlibDeflateCodec } from '../../../src/node/deflate.js';
import { latin1, type Problem, type Target } from '../driver/input.js';
import { mutateBytes } from '../driver/mutate.js';
import { outcome } from '../driver/outcomes.js';
import { Rng } from '../driver/rng.js';
import { checkClientDeflate, checkHandshakeError } from '../shared/http.js';

const SERVER_DEFLATE_OPTIONS: readonly DeflateServerOptions[] = [
  {},
  { serverNoContextTakeover: false },
  { serverMaxWindowBits: 10, clientMaxWindowBits: 9 },
  { clientNoContextTakeover: true, serverMaxWindowBits: 8, serverNoContextTakeover: false },
];
const CLIENT_DEFLATE_OPTIONS: ReadonlyArray<DeflateClientOptions | undefined> = [
  undefined,
  { serverNoContextTakeover: true },
  { serverMaxWindowBits: 9 },
  { clientMaxWindowBits: false },
  { clientMaxWindowBits: 10, clientNoContextTakeover: true },
  { serverMaxWindowBits: 15, clientMaxWindowBits: 8 },
];

const EXTENSION_CORPUS: readonly string[] = [
  'permessage-deflate',
  'permessage-deflate; client_max_window_bits',
  'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12',
  'permessage-deflate; server_max_window_bits="9"; client_max_window_bits="15", permessage-deflate',
  'x-webkit-deflate-frame, permessage-deflate; client_max_window_bits; server_max_window_bits=15',
  'foo; bar="b\\az"; baz, permessage-deflate; server_no_context_takeover',
  ' , permessage-deflate ;client_max_window_bits = 8 ,',
  'permessage-deflate; server_max_window_bits=7, permessage-deflate; server_max_window_bits=08, permessage-deflate; client_no_context_takeover=1, permessage-deflate; unknown',
  'permessage-deflate; server_max_window_bits=10; server_max_window_bits=11, permessage-deflate; client_max_window_bits=9',
  ...CLIENT_DEFLATE_OPTIONS.map((o) => formatExtensions([deflateClientOffer(o)])),
];
const EXTENSION_DICT: readonly Buffer[] = [
  ',', ';', '=', '"', '\\', ' ', '\t', '\0', '\x7f', '\xff', '\xe9', 'permessage-deflate', 'server_no_context_takeover', 'client_no_context_takeover',
  'server_max_window_bits', 'client_max_window_bits', '=8', '=9', '=15', '=16', '=7', '="10"', '="1\\0"', '=0', '=010', '= 10',
].map(latin1);

/** What a client that sent `offer` (a valid permessage-deflate element) asked for. */
function clientOptionsOf(offer: ExtensionOffer): DeflateClientOptions {
  const options: DeflateClientOptions = { clientMaxWindowBits: false };
  for (const [name, value] of offer.params) {
    if (name === 'server_no_context_takeover') options.serverNoContextTakeover = true;
    else if (name === 'client_no_context_takeover') options.clientNoContextTakeover = true;
    else if (name === 'server_max_window_bits') options.serverMaxWindowBits = Number(value);
    else if (name === 'client_max_window_bits') options.clientMaxWindowBits = value === true ? true : Number(value);
  }
  return options;
}

/** The two codecs a negotiation produced must understand each other, both ways, message after message. */
function checkCodecPair(server: DeflateParams, client: DeflateParams, rng: Rng): Problem | null {
  const serverCodec = new ZlibDeflateCodec(server, 'server', 'permessage-deflate');
  const clientCodec = new ZlibDeflateCodec(client, 'client', 'permessage-deflate');
  for (let i = 0; i < 3; i++) {
    const message = Buffer.from(`message ${i} ${'abcabc'.repeat(1 + rng.int(50))} ${rng.bytes(rng.int(64)).toString('hex')}`);
    for (const [from, to, name] of [[clientCodec, serverCodec, 'client to server'], [serverCodec, clientCodec, 'server to client']] as const) {
      const compressed = from.compress(message);
      if (compressed === null) continue;
      let inflated: Buffer | null;
      try {
        inflated = to.decompress(compressed, 0);
      } catch (e) {
        return { key: 'codec-pair', message: `${name}: message ${i} does not inflate (${String(e)}) with server ${JSON.stringify(server)} and client ${JSON.stringify(client)}` };
      }
      if (inflated === null || !inflated.equals(message)) return { key: 'codec-pair', message: `${name}: message ${i} inflates to other bytes` };
    }
  }
  return null;
}

export function extensionsTarget(): Target {
  const pool = EXTENSION_CORPUS.map(latin1);
  const variants = SERVER_DEFLATE_OPTIONS.length * CLIENT_DEFLATE_OPTIONS.length;
  const optionsOf = (v: number): [DeflateServerOptions, DeflateClientOptions | undefined] => [
    SERVER_DEFLATE_OPTIONS[Math.floor(v / CLIENT_DEFLATE_OPTIONS.length)] ?? {},
    CLIENT_DEFLATE_OPTIONS[v % CLIENT_DEFLATE_OPTIONS.length],
  ];
  return {
    name: 'extensions',
    description: 'parseExtensions, then negotiateDeflateServer and acceptDeflateResponse on what it parsed; negotiated codecs must interoperate',
    variants,
    describeVariant(v) {
      const [s, c] = optionsOf(v);
      return `server ${JSON.stringify(s)}, client ${JSON.stringify(c ?? 'defaults')}`;
    },
    generate(rng) {
      const variant = rng.int(variants);
      let data: Buffer;
      if (rng.chance(0.05)) data = rng.bytes(rng.size(200));
      else {
        const parts = Array.from({ length: 1 + rng.size(3) }, () => rng.pick(EXTENSION_CORPUS));
        data = latin1(parts.join(rng.pick([', ', ',', ' , '])));
        if (rng.chance(0.8)) data = mutateBytes(rng, data, pool, EXTENSION_DICT, 1 + rng.size(7), 8192);
      }
      return { variant, splits: [], data };
    },
    check(input) {
      const [serverOptions, clientOptions] = optionsOf(input.variant);
      const header = input.data.toString('latin1');
      let offers: ExtensionOffer[];
      try {
        offers = parseExtensions(header);
      } catch (e) {
        outcome('header refused');
        return checkHandshakeError(e, new Set<HandshakeErrorCode>(['BAD_EXTENSION_HEADER']), null, 'parseExtensions');
      }
      if (offers.length === 0) return { key: 'empty-list', message: 'parseExtensions returned no offers without throwing' };
      let formatted: string;
      try {
        formatted = formatExtensions(offers);
      } catch (e) {
        return { key: 'format-throws', message: `formatExtensions threw on what parseExtensions returned: ${String(e)}` };
      }
      if (JSON.stringify(parseExtensions(formatted)) !== JSON.stringify(offers)) return { key: 'round-trip', message: `format/parse round trip changed ${JSON.stringify(offers)} into ${formatted}` };

      // Server side: never throws; picks the first acceptable offer.
      const negotiated = negotiateDeflateServer(offers, serverOptions);
      outcome(negotiated === null ? 'server declines' : 'server accepts');
      const firstAcceptable = offers.find((o) => negotiateDeflateServer([o], serverOptions) !== null);
      if ((negotiated === null) !== (firstAcceptable === undefined)) return { key: 'negotiation-choice', message: 'negotiateDeflateServer did not take the first acceptable offer' };
      if (negotiated !== null && firstAcceptable !== undefined) {
        const p = negotiated.params;
        const inRange = (n: number): boolean => Number.isInteger(n) && n >= 8 && n <= 15;
        if (!inRange(p.serverMaxWindowBits) || !inRange(p.clientMaxWindowBits)) return { key: 'window-range', message: `negotiated ${JSON.stringify(p)}` };
        if (p.serverMaxWindowBits > (serverOptions.serverMaxWindowBits ?? 15)) return { key: 'server-cap', message: 'the server window passes its own cap' };
        const asked = clientOptionsOf(firstAcceptable);
        if (asked.serverMaxWindowBits !== undefined && p.serverMaxWindowBits > asked.serverMaxWindowBits) return { key: 'server-window', message: 'the server window passes the one requested' };
        // The client that sent that offer must accept the answer, and agree on the parameters.
        let client: DeflateParams | null;
        try {
          client = acceptDeflateResponse([negotiated.response], asked);
        } catch (e) {
          return { key: 'client-refuses-server', message: `the client refuses the server's answer ${formatExtensions([negotiated.response])} to ${formatExtensions([firstAcceptable])}: ${String(e)}` };
        }
        if (client === null) return { key: 'client-refuses-server', message: 'the client ignores the server answer' };
        const same = { ...client, clientNoContextTakeover: p.clientNoContextTakeover };
        if (JSON.stringify(same) !== JSON.stringify(p) || (p.clientNoContextTakeover && !client.clientNoContextTakeover)) {
          return { key: 'sides-disagree', message: `server ${JSON.stringify(p)} vs client ${JSON.stringify(client)} for ${formatExtensions([firstAcceptable])}` };
        }
        const codecs = checkCodecPair(p, client, new Rng(input.data.length, input.variant));
        if (codecs !== null) return codecs;
      }
      // Client side: the parsed list read as a server response.
      return checkClientDeflate(offers, clientOptions, 101);
    },
  };
}
