// Subscription tokens end to end, as an operator configures them: `hotline serve --config`
// with an HMAC secret and a namespace whose `subscribe` is `token`. A backend (here jose,
// in the test) signs one token per user and channel; a `sub` carries it. Each way to get it
// wrong is refused with its code, and the right one subscribes and receives.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SignJWT } from 'jose';
import { startTarget, type AttackTarget } from './support/attack.js';
import { ChannelsClient } from './support/channels-client.js';

const SECRET = 'sub-token-test-hmac-secret-0123456789abcdef';
const key = new TextEncoder().encode(SECRET);
const dir = mkdtempSync(join(tmpdir(), 'hotline-sub-tokens-'));
let server: AttackTarget;

function sign(claims: Record<string, unknown>, expiresIn = '1h'): Promise<string> {
  return new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).setExpirationTime(expiresIn).sign(key);
}

before(async () => {
  const config = join(dir, 'hotline.json');
  writeFileSync(config, JSON.stringify({ token: { hmacSecret: SECRET }, namespaces: { 'private:*': { subscribe: 'token', publish: 'token' } } }));
  server = await startTarget(['--config', config]);
});
after(async () => {
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('a sub needs a token for that channel and that user; with it, the channel is subscribed and delivers', async () => {
  const ada = await ChannelsClient.connect(`${server.ws}/ws?token=${await sign({ sub: 'ada' })}`);
  const bob = await ChannelsClient.connect(`${server.ws}/ws?token=${await sign({ sub: 'bob' })}`);
  try {
    const code = async (client: ChannelsClient, ch: string, token?: string): Promise<unknown> => {
      const answer = await client.request('sub', token === undefined ? { ch } : { ch, token });
      return answer.op === 'err' ? answer.code : answer.op;
    };
    const forAda = await sign({ sub: 'ada', channel: 'private:ada' });
    assert.equal(await code(ada, 'private:ada'), 'unauthorized', 'no token');
    assert.equal(await code(ada, 'private:ada', 'not.a.token'), 'unauthorized', 'not a token');
    assert.equal(await code(ada, 'private:ada', await sign({ sub: 'ada', channel: 'private:ada' }, '-1m')), 'unauthorized', 'expired');
    assert.equal(await code(ada, 'private:other', forAda), 'forbidden', "another channel's token");
    assert.equal(await code(bob, 'private:ada', forAda), 'forbidden', "another user's token");
    assert.equal(await code(ada, 'news', forAda), 'forbidden', 'a channel in no namespace');
    assert.equal(await code(ada, 'private:ada', forAda), 'ok', 'the right token');

    // Subscribed with it: a publish there (allowed to the subscriber) is delivered to her.
    const mark = ada.log.length;
    const published = await ada.request('pub', { ch: 'private:ada', data: { text: 'hi' } });
    assert.equal(published.op, 'ok');
    const message = await ada.waitFor((m) => m.op === 'msg' && m.ch === 'private:ada', 'the message on the channel', undefined, mark);
    assert.deepEqual(message.data, { text: 'hi' });
  } finally {
    await ada.close();
    await bob.close();
  }
});
