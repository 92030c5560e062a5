// http-request: HttpHeadParser('request') whole and split, then validateClientRequest,
// negotiateDeflateServer, and the 101 or refusal the server writes back, which must parse
// with the status of the error (and a 101 be accepted by the client that sent the request).
import { Buffer } from 'node:buffer';
import { negotiateDeflateServer, type DeflateServerOptions, type HandshakeError, type HandshakeErrorCode } from '../../../src/protocol/index.js';
import { buildServerResponse, computeAccept, validateClientRequest, validateServerResponse, type ServerHandshakeOptions } from '../../../src/protocol/handshake.js';
import { HttpHeadParser } from '../../../src/protocol/http-head.js';
import { chooseSplits, latin1, type Problem, type Target, withVariants } from '../driver/input.js';
import { mutateBytes } from '../driver/mutate.js';
import { outcome } from '../driver/outcomes.js';
import { checkHandshakeError, checkRefusal, HTTP_DICT, mutateHttpLines, parseHeadWholeAndSplit, SERVER_CODES } from '../shared/http.js';

interface RequestVariant {
  maxHead: number;
  options: ServerHandshakeOptions;
  deflate: DeflateServerOptions;
  label: string;
}

const REQUEST_VARIANTS: RequestVariant[] = (() => {
  const out: RequestVariant[] = [];
  const options: Array<[string, ServerHandshakeOptions]> = [
    ['no options', {}],
    ['protocols [hotline.v1, chat]', { protocols: ['hotline.v1', 'chat'] }],
    ['protocol chooser', { protocols: (offered) => offered[offered.length - 1] }],
    ['origins [http://example.com]', { origins: ['http://example.com'] }],
    ['origin predicate', { origins: (o) => o === undefined || o.startsWith('http://') }],
  ];
  const deflates: Array<[string, DeflateServerOptions]> = [
    ['deflate defaults', {}],
    ['deflate 10/9, client no takeover', { serverMaxWindowBits: 10, clientMaxWindowBits: 9, clientNoContextTakeover: true }],
  ];
  for (const maxHead of [16 * 1024, 300]) {
    for (const [ol, o] of options) for (const [dl, d] of deflates) out.push({ maxHead, options: o, deflate: d, label: `head ≤ ${maxHead}, ${ol}, ${dl}` });
  }
  return out;
})();

const REQUEST_CORPUS: readonly string[] = [
  'GET /chat HTTP/1.1\r\nHost: server.example.com\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nOrigin: http://example.com\r\nSec-WebSocket-Protocol: chat, superchat\r\nSec-WebSocket-Version: 13\r\n\r\n',
  'GET /echo HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n',
  'GET /ws?token=abc HTTP/1.1\r\nhost: localhost\r\nupgrade: WebSocket\r\nconnection: keep-alive, Upgrade\r\nsec-websocket-key: AQIDBAUGBwgJCgsMDQ4PEA==\r\nsec-websocket-version: 13\r\nsec-websocket-protocol: hotline.v1\r\nuser-agent: fuzz\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=12, permessage-deflate, x-webkit-deflate-frame\r\n\r\n',
  'GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Extensions: permessage-deflate; server_max_window_bits="9"; client_max_window_bits="15"\r\nSec-WebSocket-Extensions: foo; bar="b\\az"\r\n\r\n',
  'GET /echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n\x81\x85\x01\x02\x03\x04\x69\x67\x6f\x68\x6e',
  'GET ws://h/echo HTTP/1.1\r\nHost: h\r\nUpgrade: websocket/13, h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nOrigin: https://evil.example\r\n\r\n',
  'GET /echo HTTP/1.0\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  'POST /echo HTTP/1.1\r\nHost: h\r\nHost: h2\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: short==\r\nSec-WebSocket-Version: 8\r\nContent-Length: 5\r\n\r\nhello',
  'GET /echo HTTP/1.1\nHost: h\nUpgrade: websocket\n\n',
  'GET /echo HTTP/1.1\r\nHost: h\r\n folded\r\nX:\tv\t\r\n\r\n',
  // Other versions on the request line: 505 for another major version, 400 for 1.0.
  'GET /echo HTTP/2.0\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  'GET /ws HTTP/9.9\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: hotline.v1\r\n\r\n',
  'GET / HTTP/0.9\r\nHost: h\r\n\r\n',
  'GET /echo HTTP/1.9\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n',
  'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n',
  'GET /echo HTTP/3.0\r\nHost: h\r\n\r\n',
];

export function requestTarget(): Target {
  const pool = REQUEST_CORPUS.map(latin1);
  return withVariants(REQUEST_VARIANTS, {
    name: 'http-request',
    description: 'HttpHeadParser (request) split at random points, validateClientRequest, negotiateDeflateServer, and the 101 or refusal written back',
    generate(rng) {
      let data: Buffer;
      if (rng.chance(0.05)) data = rng.bytes(rng.size(600));
      else {
        let text = rng.pick(REQUEST_CORPUS);
        const rounds = rng.chance(0.2) ? 0 : 1 + rng.size(5);
        for (let i = 0; i < rounds; i++) text = mutateHttpLines(rng, text, REQUEST_CORPUS);
        data = latin1(text);
        if (rng.chance(0.4)) data = mutateBytes(rng, data, pool, HTTP_DICT, 1 + rng.size(5), 40_000);
      }
      return { splits: chooseSplits(rng, data.length), data };
    },
    check(input, variant) {
      const whole = parseHeadWholeAndSplit('request', input, variant.maxHead);
      if (whole.problem !== null) return whole.problem;
      if (whole.error !== null) return checkRefusal(whole.error.status, whole.error.message, whole.error.headers);
      // An incomplete head: the server waits for more (until its handshake timeout).
      if (whole.head === null) return null;
      const head = whole.head;
      const version = versionRule(input.data);
      let accepted;
      try {
        accepted = validateClientRequest(head, variant.options);
      } catch (e) {
        const p = checkHandshakeError(e, SERVER_CODES, null, 'validateClientRequest');
        if (p !== null) return p;
        outcome(`refused ${(e as HandshakeError).code}`);
        const error = e as HandshakeError;
        const v = checkVersionRule(version, error.code);
        if (v !== null) return v;
        return checkRefusal(error.status, error.message, { ...error.headers });
      }
      const v = checkVersionRule(version, null);
      if (v !== null) return v;
      if (accepted.accept !== computeAccept(accepted.key)) return { key: 'accept', message: 'the accept value is not derived from the key' };
      if (accepted.protocol !== undefined && !accepted.offeredProtocols.includes(accepted.protocol)) {
        return { key: 'protocol-not-offered', message: `selected subprotocol ${accepted.protocol} was not offered` };
      }
      const negotiated = negotiateDeflateServer(accepted.extensions, variant.deflate);
      outcome(negotiated === null ? 'accepted' : 'accepted with permessage-deflate');
      const extensions = negotiated === null ? undefined : [negotiated.response];
      let response: string;
      try {
        response = buildServerResponse({ accept: accepted.accept, protocol: accepted.protocol, extensions });
      } catch (e) {
        return { key: 'response-throws', message: `buildServerResponse threw ${String(e)} for an accepted request` };
      }
      // The client that sent this request must accept the answer.
      const parser = new HttpHeadParser('response');
      const responseHead = parser.push(Buffer.from(response, 'latin1'));
      if (responseHead === null) return { key: 'response-incomplete', message: 'the 101 response is not a complete head' };
      try {
        const result = validateServerResponse(responseHead, { key: accepted.key, protocols: accepted.offeredProtocols, extensions: accepted.extensions });
        if (result.protocol !== (accepted.protocol ?? '')) return { key: 'response-protocol', message: 'the 101 names another subprotocol' };
      } catch (e) {
        return { key: 'response-refused', message: `the client side refuses the server's own 101: ${String(e)}` };
      }
      return null;
    },
  });
}

/**
 * What the request line's version demands, read from the bytes independently of the parser:
 * a method but GET is refused first (405); then any major version but 1 is 505 (HTTP/2.0,
 * HTTP/9.9 on a request line are not HTTP/2 or anything else), HTTP/1.0 is 400, and 1.1 or a
 * later 1.x passes the version check. Null when the line does not end in HTTP/d.d.
 */
function versionRule(data: Buffer): HandshakeErrorCode | 'pass' | null {
  const end = data.indexOf(0x0a);
  const line = data.subarray(0, end === -1 ? data.length : end).toString('latin1').replace(/\r$/, '');
  const match = /^HTTP\/([0-9])\.([0-9])$/.exec(line.slice(line.lastIndexOf(' ') + 1));
  if (match === null) return null;
  if (!line.startsWith('GET ')) return 'METHOD_NOT_ALLOWED';
  if (match[1] !== '1') return 'HTTP_VERSION_NOT_SUPPORTED';
  return match[2] === '0' ? 'HTTP_VERSION' : 'pass';
}

const VERSION_CODES: ReadonlySet<HandshakeErrorCode> = new Set(['METHOD_NOT_ALLOWED', 'HTTP_VERSION_NOT_SUPPORTED', 'HTTP_VERSION']);

/** The request was refused with `refused` (null: accepted); the version rule must agree. */
function checkVersionRule(rule: HandshakeErrorCode | 'pass' | null, refused: HandshakeErrorCode | null): Problem | null {
  if (rule === null) return null;
  if (rule === 'pass') {
    if (refused !== null && VERSION_CODES.has(refused)) return { key: `version:${refused}`, message: `a GET over HTTP/1.x (x ≥ 1) was refused with ${refused}` };
    return null;
  }
  if (refused !== rule) return { key: `version:${rule}`, message: `the request line calls for ${rule}, but the request was ${refused === null ? 'accepted' : `refused with ${refused}`}` };
  return null;
}
