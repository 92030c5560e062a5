import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseJsonc, JsoncError } from './jsonc.js';
import { ConfigError, loadServeConfig, parseConfigText, summarize } from './load.js';
import { OptionError } from './kinds.js';
import { STARTER_CONFIG } from './starter.js';

function configErrors(text: string): string[] {
  try {
    parseConfigText('c.json', text);
  } catch (error) {
    if (error instanceof ConfigError) return [...error.lines];
    throw error;
  }
  assert.fail('no error');
}

function optionError(args: string[], env: Record<string, string>): string {
  try {
    loadServeConfig(args, env);
  } catch (error) {
    if (error instanceof OptionError) return error.message;
    throw error;
  }
  assert.fail('no error');
}

test('JSONC: comments and trailing commas are allowed; errors say the line and column', () => {
  assert.deepEqual(parseJsonc('// top\n{ /* a */ "a": [1, 2,], "b": { "c": "x//y" }, }'), { a: [1, 2], b: { c: 'x//y' } });
  const at = (text: string): string => {
    try {
      parseJsonc(text);
    } catch (error) {
      if (error instanceof JsoncError) return error.message;
    }
    return 'parsed';
  };
  assert.equal(at('{\n  "a": 1\n  "b": 2\n}'), `line 3, column 3: expected ',' or '}', found "\\"b\\""`);
  assert.equal(at('{ "a": }'), 'line 1, column 8: expected a value, found "}"');
  assert.equal(at('{ "a": 1, "a": 2 }'), 'line 1, column 11: the key "a" appears twice');
  assert.equal(at('{ "a": 1 } x'), 'line 1, column 12: unexpected character, found "x"');
  assert.equal(at('/* never closed'), 'line 1, column 1: a /* comment is never closed, found "/* never closed"');
  assert.equal(at(''), 'line 1, column 1: expected a value');
  assert.equal(at('['.repeat(100)), 'line 1, column 65: nested deeper than 64 levels');
  // __proto__ is a key like any other: the schema then calls it unknown.
  const parsed = parseJsonc('{ "__proto__": { "polluted": true } }') as Record<string, unknown>;
  assert.equal(Object.getPrototypeOf(parsed), Object.prototype);
  assert.deepEqual(configErrors('{ "__proto__": { "polluted": true } }'), ['c.json: unknown key __proto__']);
});

test('a file sets flat options (rates in every form) and sections', () => {
  const layer = parseConfigText(
    'c.json',
    `{
      "$schema": "https://example/hotline.schema.json",
      "port": 9000, "publishRate": 5, "subscribeRate": "10:20", "rpcRate": { "perSecond": 1.5, "burst": 3 },
      "origins": ["https://app.example"], "trustProxy": ["10.0.0.0/8"],
      "namespaces": { "chat:*": { "subscribe": "anyone", "publishRate": "2:4" }, "*": {} },
      "token": { "hmacSecret": "${'s'.repeat(32)}", "algorithms": ["HS256"] },
      "api": { "key": "${'k'.repeat(16)}" },
      "proxy": { "connect": { "url": "http://127.0.0.1:9/connect", "timeout": 500 } }
    }`,
  );
  assert.equal(layer.get('port'), 9000);
  assert.deepEqual(layer.get('publishRate'), { perSecond: 5 });
  assert.deepEqual(layer.get('subscribeRate'), { perSecond: 10, burst: 20 });
  assert.deepEqual(layer.get('rpcRate'), { perSecond: 1.5, burst: 3 });
  assert.deepEqual(layer.get('namespaces'), { 'chat:*': { subscribe: 'anyone', publishRate: { perSecond: 2, burst: 4 } }, '*': {} });
  assert.deepEqual(layer.get('proxy.connect'), { url: 'http://127.0.0.1:9/connect', timeout: 500 });
  assert.equal(summarize(layer), '6 options, 2 namespaces, token, api, proxy');
});

test('a file is checked whole: every problem, one line each, naming the key path', () => {
  assert.deepEqual(
    configErrors(`{
      "port": -1, "deflate": "yes", "slowConsumer": "wait", "trustProxy": "x",
      "namespaces": { "a": { "history": "me" }, "b": { "presence": 1 }, "c": { "schema": { "type": "nope" } } },
      "token": { "unknown": 1 }, "proxy": { "rpc": { "url": "ftp://x" } }
    }`),
    [
      'c.json: port must be a whole number from 0 to 65535 (got -1)',
      'c.json: trustProxy must be true, false, a number of proxies, or a list of addresses and CIDRs (got "x")',
      'c.json: deflate must be true or false (got "yes")',
      'c.json: slowConsumer must be one of drop, close, try-again-later (got "wait")',
      'c.json: namespaces.a.history must be one of anyone, authenticated, claim, token, server (got "me")',
      'c.json: namespaces.b.presence must be true or false (got 1)',
      'c.json: unknown key token.unknown (expected one of hmacSecret, publicKey, jwksUrl, jwksTimeout, jwksCooldown, algorithms, audience, issuer, clockTolerance, cookie, queryParam, required)',
      'c.json: proxy.rpc.url must be an http:// or https:// URL (got "ftp://x")',
    ],
  );
  // Past the schema, each kind's own checks, for the keys the schema accepted.
  assert.deepEqual(configErrors('{ "redis": "http://x", "origins": ["*", "nope"], "prot": 1 }'), [
    'c.json: unknown key prot (did you mean port?)',
    "c.json: redis must be a redis:// or rediss:// URL, not 'http://x'",
    "c.json: origins[1]: 'nope' is not an origin: write scheme://host[:port], such as https://app.example, or '*'",
  ]);
  assert.match(configErrors('{ "namespaces": { "c": { "schema": { "type": "nope" } } } }')[0]!, /^c\.json: namespaces\.c\.schema is not a usable JSON Schema: /);
  assert.match(configErrors('{ "namespaces": { "bad name": {} } }')[0]!, /^c\.json: namespaces\."bad name" is not a channel name or a prefix ending in '\*': character U\+0020/);
  assert.deepEqual(configErrors('[]'), ['c.json: the file must hold one JSON object ({ "port": 8080, ... }), not a list']);
});

test('precedence per key: flags, then HOTLINE_* variables, then the file, then the default; sections leaf by leaf', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hotline-load-'));
  try {
    const path = join(dir, 'c.json');
    writeFileSync(path, JSON.stringify({ port: 1, idleTimeout: 5, token: { hmacSecret: 'f'.repeat(32), issuer: 'file' }, namespaces: { a: {} } }));
    const env = {
      HOTLINE_CONFIG: path,
      HOTLINE_PORT: '2',
      HOTLINE_TOKEN_ISSUER: 'env',
      HOTLINE_NAMESPACES: '{"b": {"subscribe": "anyone"}}',
      HOTLINE_API_KEY: 'e'.repeat(16),
    };
    const loaded = loadServeConfig(['--port', '3', '--api-key', 'g'.repeat(16), '--no-deflate'], env);
    assert.equal(loaded.file, path);
    assert.equal(loaded.config.port, 3);
    assert.equal(loaded.config.idleTimeout, 5);
    assert.equal(loaded.config.deflate, false);
    assert.equal(loaded.config.heartbeatInterval, 30_000, 'the default');
    assert.deepEqual(loaded.sections.token, { hmacSecret: 'f'.repeat(32), issuer: 'env' });
    assert.deepEqual(loaded.sections.namespaces, { b: { subscribe: 'anyone' } }, 'an object-valued key is replaced whole');
    assert.deepEqual(loaded.sections.api, { key: 'g'.repeat(16) });
    assert.equal(loadServeConfig(['--config', path], env).config.port, 2);
    assert.equal(loadServeConfig(['--config', path], {}).config.port, 1);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test('a variable or flag holding JSON is checked as the file would be, naming the variable', () => {
  assert.match(optionError([], { HOTLINE_NAMESPACES: '{"a": ' }), /^HOTLINE_NAMESPACES must be JSON: /);
  assert.equal(optionError([], { HOTLINE_NAMESPACES: '{"a": {"publish": "me"}}' }), 'HOTLINE_NAMESPACES: a.publish must be one of anyone, authenticated, claim, token, server (got "me")');
  assert.equal(optionError(['--token-algorithms', 'HS256,none'], {}), "--token-algorithms must list some of HS256, HS384, HS512, RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, ES512, EdDSA, not 'none'");
  assert.equal(optionError(['--config'], {}), '--config needs a value: --config FILE');
});

test("the starter config passes the check", () => {
  assert.equal(summarize(parseConfigText('hotline.json', STARTER_CONFIG)), '4 options, 3 namespaces');
});
