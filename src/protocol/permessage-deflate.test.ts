import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { HandshakeError } from './errors.js';
import { type ExtensionOffer, formatExtensions, parseExtensions } from './extensions-header.js';
import {
  PERMESSAGE_DEFLATE,
  acceptDeflateResponse,
  deflateClientOffer,
  negotiateDeflateServer,
  type DeflateClientOptions,
  type DeflateParams,
  type DeflateServerOptions,
} from './permessage-deflate.js';

const DEFAULTS: DeflateParams = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
};

function params(changes: Partial<DeflateParams> = {}): DeflateParams {
  return { ...DEFAULTS, ...changes };
}

/** Negotiates a request header; returns the params and the formatted response header. */
function serve(header: string, options?: DeflateServerOptions): { params: DeflateParams; response: string } | null {
  const result = negotiateDeflateServer(parseExtensions(header), options);
  return result === null ? null : { params: result.params, response: formatExtensions([result.response]) };
}

/** Checks a response header for an offer made with `offered`. */
function accept(header: string, offered?: DeflateClientOptions, status?: number): DeflateParams | null {
  return acceptDeflateResponse(parseExtensions(header), offered, status);
}

function assertBadResponse(fn: () => unknown, problem: RegExp, status = 101): void {
  assert.throws(fn, (err: unknown) => {
    assert.ok(err instanceof HandshakeError, `expected a HandshakeError, got ${String(err)}`);
    assert.equal(err.code, 'BAD_EXTENSION_RESPONSE');
    assert.equal(err.status, status);
    assert.match(err.message, problem);
    return true;
  });
}

describe('deflateClientOffer', () => {
  test('defaults to what Chromium and ws offer: client_max_window_bits without a value', () => {
    const offer = deflateClientOffer();
    assert.deepEqual(offer, { name: PERMESSAGE_DEFLATE, params: [['client_max_window_bits', true]] });
    assert.equal(formatExtensions([offer]), 'permessage-deflate; client_max_window_bits');
    assert.deepEqual(deflateClientOffer({}), offer);
  });

  test('lists every requested parameter in RFC order', () => {
    const offer = deflateClientOffer({
      serverNoContextTakeover: true,
      clientNoContextTakeover: true,
      serverMaxWindowBits: 10,
      clientMaxWindowBits: 8,
    });
    assert.equal(
      formatExtensions([offer]),
      'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=10; client_max_window_bits=8',
    );
  });

  test('false options add nothing; clientMaxWindowBits false leaves the parameter out', () => {
    const offer = deflateClientOffer({
      serverNoContextTakeover: false,
      clientNoContextTakeover: false,
      clientMaxWindowBits: false,
    });
    assert.deepEqual(offer, { name: PERMESSAGE_DEFLATE, params: [] });
  });

  for (const bad of [7, 16, 0, -1, 10.5, Number.NaN]) {
    test(`refuses window bits ${bad}`, () => {
      assert.throws(() => deflateClientOffer({ serverMaxWindowBits: bad }), RangeError);
      assert.throws(() => deflateClientOffer({ clientMaxWindowBits: bad }), RangeError);
    });
  }
});

describe('negotiateDeflateServer', () => {
  test('accepts what Chromium and ws offer by default, answering server_no_context_takeover', () => {
    assert.deepEqual(serve('permessage-deflate; client_max_window_bits'), {
      params: params({ serverNoContextTakeover: true }),
      response: 'permessage-deflate; server_no_context_takeover',
    });
  });

  test('a bare offer with serverNoContextTakeover false gives an empty response element', () => {
    assert.deepEqual(serve('permessage-deflate', { serverNoContextTakeover: false }), {
      params: params(),
      response: 'permessage-deflate',
    });
  });

  test('returns null when permessage-deflate is not offered', () => {
    assert.equal(negotiateDeflateServer([]), null);
    assert.equal(serve('x-webkit-deflate-frame, foo; bar=1'), null);
    // Extension names are compared exactly, like the rest of the handshake does.
    assert.equal(serve('Permessage-Deflate'), null);
  });

  test('ignores other extensions around the offer', () => {
    assert.equal(serve('foo, permessage-deflate; server_max_window_bits=10, bar')?.response, 'permessage-deflate; server_no_context_takeover; server_max_window_bits=10');
  });

  test('takes the first acceptable offer of several', () => {
    const result = serve('permessage-deflate; client_max_window_bits, permessage-deflate');
    assert.deepEqual(result, {
      params: params({ serverNoContextTakeover: true }),
      response: 'permessage-deflate; server_no_context_takeover',
    });
    assert.equal(
      serve('permessage-deflate; server_max_window_bits=10; client_max_window_bits=10, permessage-deflate')?.response,
      'permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10',
    );
  });

  test('server_max_window_bits and client_max_window_bits offered with values', () => {
    assert.deepEqual(serve('permessage-deflate; server_max_window_bits=10; client_max_window_bits=10'), {
      params: params({ serverNoContextTakeover: true, serverMaxWindowBits: 10, clientMaxWindowBits: 10 }),
      response: 'permessage-deflate; server_no_context_takeover; server_max_window_bits=10; client_max_window_bits=10',
    });
  });

  test('quoted values arrive unquoted and are accepted', () => {
    assert.deepEqual(serve('permessage-deflate; server_max_window_bits="12"; client_max_window_bits="9"')?.params, params({
      serverNoContextTakeover: true,
      serverMaxWindowBits: 12,
      clientMaxWindowBits: 9,
    }));
  });

  test('window bits 8 are legal', () => {
    assert.deepEqual(serve('permessage-deflate; server_max_window_bits=8; client_max_window_bits=8'), {
      params: params({ serverNoContextTakeover: true, serverMaxWindowBits: 8, clientMaxWindowBits: 8 }),
      response: 'permessage-deflate; server_no_context_takeover; server_max_window_bits=8; client_max_window_bits=8',
    });
  });

  describe('declines invalid offers and moves on to the next one', () => {
    const invalid = [
      'permessage-deflate; foo',
      'permessage-deflate; foo=1',
      'permessage-deflate; Server_No_Context_Takeover',
      'permessage-deflate; server_no_context_takeover; server_no_context_takeover',
      'permessage-deflate; client_no_context_takeover; client_no_context_takeover',
      'permessage-deflate; server_max_window_bits=10; server_max_window_bits=10',
      'permessage-deflate; client_max_window_bits; client_max_window_bits=10',
      'permessage-deflate; client_max_window_bits; client_max_window_bits',
      'permessage-deflate; server_no_context_takeover=1',
      'permessage-deflate; server_no_context_takeover=true',
      'permessage-deflate; client_no_context_takeover=1',
      'permessage-deflate; server_max_window_bits',
      'permessage-deflate; server_max_window_bits=7',
      'permessage-deflate; server_max_window_bits=16',
      'permessage-deflate; server_max_window_bits=0',
      'permessage-deflate; server_max_window_bits=08',
      'permessage-deflate; server_max_window_bits="08"',
      'permessage-deflate; server_max_window_bits=010',
      'permessage-deflate; server_max_window_bits=+9',
      'permessage-deflate; server_max_window_bits=9.0',
      'permessage-deflate; server_max_window_bits=0x9',
      'permessage-deflate; server_max_window_bits=1e1',
      'permessage-deflate; client_max_window_bits=7',
      'permessage-deflate; client_max_window_bits=16',
      'permessage-deflate; client_max_window_bits=09',
      'permessage-deflate; client_max_window_bits=abc',
      'permessage-deflate; client_max_window_bits=1000000000000000000015',
    ];
    for (const header of invalid) {
      test(JSON.stringify(header), () => {
        assert.equal(serve(header), null);
        const next = serve(`${header}, permessage-deflate; server_max_window_bits=11`);
        assert.equal(next?.response, 'permessage-deflate; server_no_context_takeover; server_max_window_bits=11');
      });
    }
  });

  test('answers a requested server_no_context_takeover even when its own option is false', () => {
    assert.deepEqual(serve('permessage-deflate; server_no_context_takeover', { serverNoContextTakeover: false }), {
      params: params({ serverNoContextTakeover: true }),
      response: 'permessage-deflate; server_no_context_takeover',
    });
  });

  test('answers client_no_context_takeover only when offered and enabled', () => {
    const header = 'permessage-deflate; client_no_context_takeover';
    assert.deepEqual(serve(header), {
      params: params({ serverNoContextTakeover: true }),
      response: 'permessage-deflate; server_no_context_takeover',
    });
    assert.deepEqual(serve(header, { clientNoContextTakeover: true }), {
      params: params({ serverNoContextTakeover: true, clientNoContextTakeover: true }),
      response: 'permessage-deflate; server_no_context_takeover; client_no_context_takeover',
    });
    assert.deepEqual(serve('permessage-deflate', { clientNoContextTakeover: true }), {
      params: params({ serverNoContextTakeover: true }),
      response: 'permessage-deflate; server_no_context_takeover',
    });
  });

  test('server_max_window_bits: min(offer, cap), answered when offered or when the cap is below 15', () => {
    const cases: Array<[offer: string, cap: number | undefined, bits: number, answer: string]> = [
      ['permessage-deflate', undefined, 15, ''],
      ['permessage-deflate', 15, 15, ''],
      ['permessage-deflate', 12, 12, '; server_max_window_bits=12'],
      ['permessage-deflate', 8, 8, '; server_max_window_bits=8'],
      ['permessage-deflate; server_max_window_bits=15', undefined, 15, '; server_max_window_bits=15'],
      ['permessage-deflate; server_max_window_bits=10', undefined, 10, '; server_max_window_bits=10'],
      ['permessage-deflate; server_max_window_bits=10', 12, 10, '; server_max_window_bits=10'],
      ['permessage-deflate; server_max_window_bits=12', 10, 10, '; server_max_window_bits=10'],
      ['permessage-deflate; server_max_window_bits=9', 15, 9, '; server_max_window_bits=9'],
    ];
    for (const [offer, cap, bits, answer] of cases) {
      const result = serve(offer, { serverNoContextTakeover: false, serverMaxWindowBits: cap });
      assert.deepEqual(result, { params: params({ serverMaxWindowBits: bits }), response: `permessage-deflate${answer}` }, `${offer} with cap ${cap}`);
    }
  });

  test('client_max_window_bits: only answered when offered, never above the offered value', () => {
    const cases: Array<[offer: string, wanted: number | undefined, bits: number, answer: string]> = [
      ['permessage-deflate', undefined, 15, ''],
      ['permessage-deflate', 10, 15, ''], // not offered: the server cannot ask (§7.1.2.2)
      ['permessage-deflate; client_max_window_bits', undefined, 15, ''],
      ['permessage-deflate; client_max_window_bits', 15, 15, ''],
      ['permessage-deflate; client_max_window_bits', 10, 10, '; client_max_window_bits=10'],
      ['permessage-deflate; client_max_window_bits', 8, 8, '; client_max_window_bits=8'],
      ['permessage-deflate; client_max_window_bits=12', undefined, 12, '; client_max_window_bits=12'],
      ['permessage-deflate; client_max_window_bits=12', 10, 10, '; client_max_window_bits=10'],
      ['permessage-deflate; client_max_window_bits=10', 12, 10, '; client_max_window_bits=10'],
      ['permessage-deflate; client_max_window_bits=15', undefined, 15, '; client_max_window_bits=15'],
    ];
    for (const [offer, wanted, bits, answer] of cases) {
      const result = serve(offer, { serverNoContextTakeover: false, clientMaxWindowBits: wanted });
      assert.deepEqual(result, { params: params({ clientMaxWindowBits: bits }), response: `permessage-deflate${answer}` }, `${offer} wanting ${wanted}`);
    }
  });

  test('parameter order in the offer does not matter', () => {
    const a = serve('permessage-deflate; client_max_window_bits=9; server_max_window_bits=11; client_no_context_takeover; server_no_context_takeover', { clientNoContextTakeover: true });
    const b = serve('permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=9', { clientNoContextTakeover: true });
    assert.deepEqual(a, b);
    assert.equal(a?.response, 'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=11; client_max_window_bits=9');
  });

  for (const bad of [7, 16, 12.5]) {
    test(`refuses option window bits ${bad}`, () => {
      assert.throws(() => negotiateDeflateServer([], { serverMaxWindowBits: bad }), RangeError);
      assert.throws(() => negotiateDeflateServer([], { clientMaxWindowBits: bad }), RangeError);
    });
  }
});

describe('acceptDeflateResponse', () => {
  test('returns null when the server did not accept permessage-deflate', () => {
    assert.equal(acceptDeflateResponse([], undefined), null);
    assert.equal(accept('foo; bar'), null);
  });

  test('reads the typical answers to the default offer', () => {
    assert.deepEqual(accept('permessage-deflate'), params());
    assert.deepEqual(accept('permessage-deflate; server_no_context_takeover'), params({ serverNoContextTakeover: true }));
    assert.deepEqual(
      accept('permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=8; client_max_window_bits=8'),
      { serverNoContextTakeover: true, clientNoContextTakeover: true, serverMaxWindowBits: 8, clientMaxWindowBits: 8 },
    );
    assert.deepEqual(accept('permessage-deflate; client_max_window_bits="10"'), params({ clientMaxWindowBits: 10 }));
  });

  test('ignores other extensions', () => {
    assert.deepEqual(accept('foo, permessage-deflate; server_max_window_bits=9, bar'), params({ serverMaxWindowBits: 9 }));
  });

  test('fails on more than one permessage-deflate element', () => {
    assertBadResponse(() => accept('permessage-deflate, permessage-deflate'), /accepted 2 times/);
    assertBadResponse(() => accept('permessage-deflate; server_max_window_bits=10, foo, permessage-deflate'), /accepted 2 times/);
  });

  describe('fails on invalid responses', () => {
    const invalid: Array<[header: string, problem: RegExp]> = [
      ['permessage-deflate; foo', /unknown parameter foo/],
      ['permessage-deflate; x=1', /unknown parameter x=1/],
      ['permessage-deflate; server_no_context_takeover; server_no_context_takeover', /server_no_context_takeover is given twice/],
      ['permessage-deflate; client_no_context_takeover; client_no_context_takeover', /given twice/],
      ['permessage-deflate; server_max_window_bits=9; server_max_window_bits=9', /given twice/],
      ['permessage-deflate; client_max_window_bits=9; client_max_window_bits=10', /given twice/],
      ['permessage-deflate; server_no_context_takeover=1', /takes no value/],
      ['permessage-deflate; client_no_context_takeover=yes', /takes no value/],
      ['permessage-deflate; server_max_window_bits', /8 to 15/],
      ['permessage-deflate; server_max_window_bits=7', /8 to 15/],
      ['permessage-deflate; server_max_window_bits=16', /8 to 15/],
      ['permessage-deflate; server_max_window_bits=08', /8 to 15/],
      ['permessage-deflate; server_max_window_bits="08"', /8 to 15/],
      ['permessage-deflate; client_max_window_bits', /must give a value/],
      ['permessage-deflate; client_max_window_bits=7', /8 to 15/],
      ['permessage-deflate; client_max_window_bits=16', /8 to 15/],
      ['permessage-deflate; client_max_window_bits=010', /8 to 15/],
    ];
    for (const [header, problem] of invalid) {
      test(JSON.stringify(header), () => {
        assertBadResponse(() => accept(header), problem);
      });
    }
  });

  test('the error carries the status passed in', () => {
    assertBadResponse(() => accept('permessage-deflate; foo', undefined, 200), /foo/, 200);
  });

  test('fails on client_max_window_bits when it was not offered', () => {
    assertBadResponse(() => accept('permessage-deflate; client_max_window_bits=10', { clientMaxWindowBits: false }), /not offered/);
    assert.deepEqual(accept('permessage-deflate', { clientMaxWindowBits: false }), params());
  });

  test('fails when a requested server_no_context_takeover is not answered (§7.1.1.1)', () => {
    const offered = { serverNoContextTakeover: true };
    assertBadResponse(() => accept('permessage-deflate', offered), /does not accept the requested server_no_context_takeover/);
    assert.deepEqual(accept('permessage-deflate; server_no_context_takeover', offered), params({ serverNoContextTakeover: true }));
  });

  test('accepts server_no_context_takeover and client_no_context_takeover it did not request', () => {
    assert.deepEqual(
      accept('permessage-deflate; server_no_context_takeover; client_no_context_takeover', { serverNoContextTakeover: false }),
      params({ serverNoContextTakeover: true, clientNoContextTakeover: true }),
    );
  });

  test('keeps an announced client_no_context_takeover even when not answered', () => {
    assert.deepEqual(accept('permessage-deflate', { clientNoContextTakeover: true }), params({ clientNoContextTakeover: true }));
  });

  test('server_max_window_bits: required when requested, never above the request', () => {
    const offered = { serverMaxWindowBits: 10 };
    assertBadResponse(() => accept('permessage-deflate', offered), /does not accept the requested server_max_window_bits=10/);
    assertBadResponse(() => accept('permessage-deflate; server_max_window_bits=11', offered), /above the requested 10/);
    assertBadResponse(() => accept('permessage-deflate; server_max_window_bits=15', offered), /above the requested 10/);
    assert.deepEqual(accept('permessage-deflate; server_max_window_bits=10', offered), params({ serverMaxWindowBits: 10 }));
    assert.deepEqual(accept('permessage-deflate; server_max_window_bits=8', offered), params({ serverMaxWindowBits: 8 }));
    // Not requested: the server may still name its window (§7.1.2.1).
    assert.deepEqual(accept('permessage-deflate; server_max_window_bits=12'), params({ serverMaxWindowBits: 12 }));
  });

  test('client_max_window_bits: the smaller of our offered value and the answer', () => {
    assert.deepEqual(accept('permessage-deflate', { clientMaxWindowBits: 10 }), params({ clientMaxWindowBits: 10 }));
    assert.deepEqual(accept('permessage-deflate; client_max_window_bits=9', { clientMaxWindowBits: 10 }), params({ clientMaxWindowBits: 9 }));
    // A larger answer does not release us from the value we offered (§7.1.2.2).
    assert.deepEqual(accept('permessage-deflate; client_max_window_bits=12', { clientMaxWindowBits: 10 }), params({ clientMaxWindowBits: 10 }));
    assert.deepEqual(accept('permessage-deflate; client_max_window_bits=12', { clientMaxWindowBits: true }), params({ clientMaxWindowBits: 12 }));
  });
});

/** Every combination of one value from each axis (the first axis varies slowest). */
function everyCombination<T extends object>(axes: { [K in keyof T]-?: ReadonlyArray<T[K]> }): T[] {
  let combinations: Array<Partial<T>> = [{}];
  for (const key of Object.keys(axes) as Array<keyof T>) {
    combinations = combinations.flatMap((partial) => axes[key].map((value) => ({ ...partial, [key]: value })));
  }
  return combinations as T[];
}

describe('round trip through the header format', () => {
  const bools = [undefined, false, true];
  const clientBits: Array<DeflateClientOptions['clientMaxWindowBits']> = [undefined, true, false, 15, 11, 8];
  const bitsOptions = [undefined, 15, 12, 9, 8];
  const takeover = { serverNoContextTakeover: bools, clientNoContextTakeover: bools, serverMaxWindowBits: bitsOptions };
  const clientOptions = everyCombination<DeflateClientOptions>({ ...takeover, clientMaxWindowBits: clientBits });
  const serverOptions = everyCombination<DeflateServerOptions>({ ...takeover, clientMaxWindowBits: bitsOptions });

  test(`${clientOptions.length} client options x ${serverOptions.length} server options agree`, () => {
    for (const c of clientOptions) {
      const requestHeader = formatExtensions([deflateClientOffer(c)]);
      for (const s of serverOptions) {
        const where = `offer ${JSON.stringify(c)} server ${JSON.stringify(s)}`;
        const negotiated = negotiateDeflateServer(parseExtensions(requestHeader), s);
        assert.ok(negotiated !== null, `every valid offer is accepted: ${where}`);
        const server = negotiated.params;
        const client = acceptDeflateResponse(parseExtensions(formatExtensions([negotiated.response])), c);
        assert.ok(client !== null, where);

        assert.equal(client.serverNoContextTakeover, server.serverNoContextTakeover, where);
        assert.equal(client.serverMaxWindowBits, server.serverMaxWindowBits, where);
        assert.equal(client.clientMaxWindowBits, server.clientMaxWindowBits, where);
        // The client may reset more often than the server relies on, never less.
        assert.ok(!server.clientNoContextTakeover || client.clientNoContextTakeover, where);
        assert.equal(client.clientNoContextTakeover, c.clientNoContextTakeover === true, where);

        // What each side asked for holds.
        if (c.serverNoContextTakeover === true || s.serverNoContextTakeover !== false) {
          assert.equal(server.serverNoContextTakeover, true, where);
        }
        assert.ok(server.serverMaxWindowBits <= (c.serverMaxWindowBits ?? 15), where);
        assert.ok(server.serverMaxWindowBits <= (s.serverMaxWindowBits ?? 15), where);
        if (typeof c.clientMaxWindowBits === 'number') assert.ok(client.clientMaxWindowBits <= c.clientMaxWindowBits, where);
        if (c.clientMaxWindowBits !== false) {
          assert.ok(client.clientMaxWindowBits <= (s.clientMaxWindowBits ?? 15), where);
        } else {
          assert.equal(client.clientMaxWindowBits, 15, where);
        }
        for (const p of Object.values(server)) assert.ok(typeof p === 'boolean' || (p >= 8 && p <= 15), where);
      }
    }
  });
});

test('responses the server builds survive formatExtensions and parseExtensions unchanged', () => {
  const offers: ExtensionOffer[] = parseExtensions(
    'permessage-deflate; server_no_context_takeover; client_no_context_takeover; server_max_window_bits=9; client_max_window_bits',
  );
  const result = negotiateDeflateServer(offers, { clientNoContextTakeover: true, clientMaxWindowBits: 8 });
  assert.ok(result !== null);
  assert.deepEqual(parseExtensions(formatExtensions([result.response])), [result.response]);
});
