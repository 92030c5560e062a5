// Spoofing the client address of a real `hotline serve`: X-Forwarded-For and Forwarded
// change the address it logs (and shows in the inspector) only with --trust-proxy, and
// only when the peer is a proxy it trusts. The peer here is always 127.0.0.1. `npm test`
// builds first; to run this file alone, run `npm run build` before it.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { WebSocket } from '../src/node/client.js';
import { startCli, type CliServer } from './support/cli-server.js';

/** The `open` lines of /echo that `hotline serve` logged so far. */
function opens(server: CliServer): Array<{ address: string }> {
  return server
    .output()
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as { event: string; endpoint?: string; address: string })
    .filter((l) => l.event === 'open' && l.endpoint === '/echo');
}

/** The address `hotline serve` logs for a connection to /echo that sends these headers. */
async function loggedAddress(server: CliServer, headers: Record<string, string>): Promise<string> {
  const before = opens(server).length;
  const logged = new Promise<void>((resolve) => {
    const check = (): void => {
      if (opens(server).length <= before) return;
      server.child.stdout!.off('data', check);
      resolve();
    };
    server.child.stdout!.on('data', check);
  });
  const ws = new WebSocket(`${server.ws}/echo`, [], { headers });
  await once(ws, 'open');
  await logged;
  ws.close(1000);
  await once(ws, 'close');
  const lines = opens(server);
  assert.equal(lines.length, before + 1, server.output());
  return lines.at(-1)!.address;
}

const FORGED = { 'X-Forwarded-For': '6.6.6.6', Forwarded: 'for=6.6.6.6' };

describe('--trust-proxy against a client that forges the headers', { timeout: 60_000 }, () => {
  const servers: CliServer[] = [];
  let plain: CliServer;
  let otherProxies: CliServer;
  let loopbackProxy: CliServer;
  let oneHop: CliServer;

  before(async () => {
    [plain, otherProxies, loopbackProxy, oneHop] = await Promise.all([
      startCli(0, [], { logLevel: 'info' }),
      startCli(0, ['--trust-proxy', '10.0.0.0/8,192.168.0.1'], { logLevel: 'info' }),
      startCli(0, ['--trust-proxy', 'loopback'], { logLevel: 'info' }),
      startCli(0, ['--trust-proxy', '1'], { logLevel: 'info' }),
    ]);
    servers.push(plain, otherProxies, loopbackProxy, oneHop);
  });

  after(async () => {
    await Promise.all(servers.map((s) => s.stop()));
  });

  test('without the option a forged header changes nothing', async () => {
    assert.equal(await loggedAddress(plain, FORGED), '127.0.0.1');
  });

  test('with it, from a peer that is not a trusted proxy: nothing either', async () => {
    assert.equal(await loggedAddress(otherProxies, FORGED), '127.0.0.1');
  });

  test('from a trusted proxy: the address it forwarded, by either header', async () => {
    assert.equal(await loggedAddress(loopbackProxy, { 'X-Forwarded-For': '198.51.100.7' }), '198.51.100.7');
    assert.equal(await loggedAddress(loopbackProxy, { Forwarded: 'for="[2001:db8::7]:4711";proto=https' }), '2001:db8::7');
  });

  test('a client that prefixes the chain, or adds the other header, does not pick its address', async () => {
    // The proxy appended the real address after the client's made-up one.
    assert.equal(await loggedAddress(oneHop, { 'X-Forwarded-For': '6.6.6.6, 198.51.100.7' }), '198.51.100.7');
    // The proxy sets X-Forwarded-For; the client's own Forwarded disagrees: neither is believed.
    assert.equal(await loggedAddress(oneHop, { 'X-Forwarded-For': '198.51.100.7', Forwarded: 'for=6.6.6.6' }), '127.0.0.1');
  });

  test('a bad --trust-proxy is refused at startup with a one-line error', async () => {
    await assert.rejects(startCli(0, ['--trust-proxy', '10.0.0.0/40']), /--trust-proxy: '10\.0\.0\.0\/40' has an invalid prefix length/);
  });
});
