// http-response: HttpHeadParser('response') whole and split, then validateServerResponse
// and acceptDeflateResponse for what a client offered.
import { deflateClientOffer, HandshakeError, type DeflateClientOptions } from '../../../src/protocol/index.js';
import { buildServerResponse, validateServerResponse } from '../../../src/protocol/handshake.js';
import { chooseSplits, latin1, type Target, withVariants } from '../driver/input.js';
import { mutateBytes } from '../driver/mutate.js';
import { outcome } from '../driver/outcomes.js';
import { checkClientDeflate, checkHandshakeError, CLIENT_CODES, HTTP_DICT, mutateHttpLines, parseHeadWholeAndSplit, SAMPLE_ACCEPT, SAMPLE_KEY } from '../shared/http.js';


interface ResponseVariant {
  maxHead: number;
  protocols: string[];
  deflate: DeflateClientOptions | null;
  label: string;
}

const RESPONSE_VARIANTS: ResponseVariant[] = (() => {
  const expectations: Array<[string, string[], DeflateClientOptions | null]> = [
    ['no protocols, no deflate', [], null],
    ['protocols [hotline.v1, chat], deflate defaults', ['hotline.v1', 'chat'], {}],
    ['protocols [chat], deflate server 10 + no takeover, client 12', ['chat'], { serverMaxWindowBits: 10, serverNoContextTakeover: true, clientMaxWindowBits: 12 }],
    ['no protocols, deflate without client_max_window_bits', [], { clientMaxWindowBits: false }],
  ];
  const out: ResponseVariant[] = [];
  for (const maxHead of [16 * 1024, 200]) for (const [label, protocols, deflate] of expectations) out.push({ maxHead, protocols, deflate, label: `head ≤ ${maxHead}, ${label}` });
  return out;
})();

const RESPONSE_CORPUS: readonly string[] = [
  buildServerResponse({ accept: SAMPLE_ACCEPT }),
  buildServerResponse({ accept: SAMPLE_ACCEPT, protocol: 'chat' }),
  buildServerResponse({ accept: SAMPLE_ACCEPT, protocol: 'hotline.v1', extensions: [{ name: 'permessage-deflate', params: [['server_no_context_takeover', true]] }] }),
  buildServerResponse({
    accept: SAMPLE_ACCEPT,
    extensions: [{ name: 'permessage-deflate', params: [['server_no_context_takeover', true], ['client_no_context_takeover', true], ['server_max_window_bits', '10'], ['client_max_window_bits', '12']] }],
  }),
  'HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits="9", permessage-deflate\r\n\r\n\x81\x02hi',
  'HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 11\r\n\r\nbad request',
  'HTTP/1.1 426 Upgrade Required\r\nUpgrade: websocket\r\nConnection: Upgrade, close\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n',
  'HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\nConnection: close\r\n\r\n',
  'HTTP/1.0 101 Switching Protocols\r\nUpgrade: WebSocket\r\nConnection: upgrade\r\nSec-WebSocket-Accept: wrongwrongwrongwrongwrong==\r\n\r\n',
];

export function responseTarget(): Target {
  const pool = RESPONSE_CORPUS.map(latin1);
  return withVariants(RESPONSE_VARIANTS, {
    name: 'http-response',
    description: 'HttpHeadParser (response) split at random points, validateServerResponse and acceptDeflateResponse',
    generate(rng) {
      let text = rng.pick(RESPONSE_CORPUS);
      const rounds = rng.chance(0.2) ? 0 : 1 + rng.size(5);
      for (let i = 0; i < rounds; i++) {
        text = mutateHttpLines(rng, text, RESPONSE_CORPUS);
        // mutateHttpLines writes request lines; put a status line back most of the time.
        if (!text.startsWith('HTTP/') && rng.chance(0.8)) text = `HTTP/1.1 ${rng.pick(['101 Switching Protocols', '101', '200 OK', '101 \x01'])}${text.slice(text.indexOf('\r\n'))}`;
      }
      let data = latin1(text);
      if (rng.chance(0.4)) data = mutateBytes(rng, data, pool, HTTP_DICT, 1 + rng.size(5), 40_000);
      return { splits: chooseSplits(rng, data.length), data };
    },
    check(input, variant) {
      const whole = parseHeadWholeAndSplit('response', input, variant.maxHead);
      if (whole.problem !== null) return whole.problem;
      if (whole.head === null) return null;
      const head = whole.head;
      const offer = variant.deflate === null ? undefined : [deflateClientOffer(variant.deflate)];
      let result;
      try {
        result = validateServerResponse(head, { key: SAMPLE_KEY, protocols: variant.protocols, extensions: offer });
      } catch (e) {
        outcome(`refused ${e instanceof HandshakeError ? e.code : '?'}`);
        return checkHandshakeError(e, CLIENT_CODES, head.status, 'validateServerResponse');
      }
      outcome('accepted');
      if (result.protocol !== '' && !variant.protocols.includes(result.protocol)) return { key: 'protocol-not-offered', message: `accepted subprotocol ${result.protocol}` };
      if (variant.deflate === null && result.extensions.length > 0) return { key: 'extension-not-offered', message: 'accepted an extension that was not offered' };
      if (variant.deflate === null) return null;
      return checkClientDeflate(result.extensions, variant.deflate, head.status);
    },
  });
}
