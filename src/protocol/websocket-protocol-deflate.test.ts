// permessage-deflate in the sans-I/O core: RFC 7692 §7.2.3's own frames, fed to the
// protocol whole and split at every byte, and the core's rules for RSV1, limits and text.
// The codec is the zlib one from the Node layer: the core only frames what it returns.
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { Buffer } from 'node:buffer';
import { ZlibDeflateCodec } from '../node/deflate.js';
import { encodeFrame } from './frame-encoder.js';
import { Opcode, type Role } from './opcode.js';
import type { DeflateCodec } from './deflate-codec.js';
import type { DeflateParams } from './permessage-deflate.js';
import { WebSocketProtocol, type ProtocolOptions } from './websocket-protocol.js';

type Event = { message: string; binary: boolean } | { error: string; closeCode: number };

const TAKEOVER: DeflateParams = {
  serverNoContextTakeover: false,
  clientNoContextTakeover: false,
  serverMaxWindowBits: 15,
  clientMaxWindowBits: 15,
};
const NO_TAKEOVER: DeflateParams = { ...TAKEOVER, serverNoContextTakeover: true, clientNoContextTakeover: true };

function codec(params: DeflateParams, role: Role): DeflateCodec {
  return new ZlibDeflateCodec(params, role, 'permessage-deflate');
}

function peer(role: Role, params: DeflateParams | null, options: Partial<ProtocolOptions> = {}) {
  const events: Event[] = [];
  const proto = new WebSocketProtocol(
    {
      onMessage: (data, binary) => events.push({ message: binary ? data.toString('hex') : data.toString(), binary }),
      onProtocolError: (error) => events.push({ error: error.code, closeCode: error.closeCode }),
    },
    { role, deflate: params === null ? undefined : codec(params, role), ...options },
  );
  return { proto, events, take: () => Buffer.concat(proto.takeOutgoing()) };
}

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

/** Feeds `frames` (unmasked, as a server sends them) to a client split at every position. */
function everySplit(frames: Buffer, params: DeflateParams, check: (events: Event[]) => void): void {
  for (let cut = 0; cut <= frames.length; cut++) {
    const client = peer('client', params);
    client.proto.receiveData(Buffer.from(frames.subarray(0, cut)));
    client.proto.receiveData(Buffer.from(frames.subarray(cut)));
    check(client.events);
  }
}

describe('RFC 7692 §7.2.3 examples', () => {
  const hello = { message: 'Hello', binary: false };
  // Each example's frames, and the messages they carry, whole and split at every byte.
  const examples: ReadonlyArray<readonly [name: string, frames: string, messages: number]> = [
    ['§7.2.3.1: "Hello" in one compressed frame', 'c1 07 f2 48 cd c9 c9 07 00', 1],
    ['§7.2.3.1: "Hello" compressed and fragmented, RSV1 on the first frame only', '41 03 f2 48 cd  80 04 c9 c9 07 00', 1],
    ['§7.2.3.2: the second "Hello" refers back to the first (context takeover)', 'c1 07 f2 48 cd c9 c9 07 00  c1 05 f2 00 11 00 00', 2],
    ['§7.2.3.3: a stored (uncompressed) deflate block', 'c1 0b 00 05 00 fa ff 48 65 6c 6c 6f 00', 1],
    ['§7.2.3.4: a block with BFINAL set', 'c1 08 f3 48 cd c9 c9 07 00 00', 1],
    ['§7.2.3.5: two deflate blocks in one message', 'c1 0d f2 48 05 00 00 00 ff ff ca c9 c9 07 00', 1],
  ];
  for (const [name, frames, messages] of examples) {
    test(name, () => {
      everySplit(hex(frames), TAKEOVER, (events) => {
        assert.deepEqual(events, Array.from({ length: messages }, () => hello));
      });
    });
  }

  test('compressing "Hello" gives the RFC bytes; again with context takeover, the shorter RFC form', () => {
    const server = peer('server', TAKEOVER);
    server.proto.send('Hello', { compress: true });
    server.proto.send('Hello', { compress: true });
    assert.equal(server.take().toString('hex'), 'c107f248cdc9c90700' + 'c105f200110000');
  });

  test('without context takeover every message is compressed on its own', () => {
    const server = peer('server', NO_TAKEOVER);
    server.proto.send('Hello', { compress: true });
    server.proto.send('Hello', { compress: true });
    assert.equal(server.take().toString('hex'), 'c107f248cdc9c90700'.repeat(2));
  });
});

describe('compressed messages through the core', () => {
  for (const params of [TAKEOVER, NO_TAKEOVER]) {
    const mode = params === TAKEOVER ? 'with' : 'without';
    test(`client to server and back, ${mode} context takeover, text and binary, fragmented`, () => {
      const client = peer('client', params);
      const server = peer('server', params);
      const texts = ['{"op":"pub","ch":"room:1","data":"hello"}', 'é€😀'.repeat(300), '', 'x'.repeat(70_000)];
      for (const t of texts) client.proto.send(t, { compress: true });
      client.proto.send(Buffer.from([0, 1, 2, 3, 255]), { compress: true });
      client.proto.send('fragmented '.repeat(100), { compress: true, fragmentSize: 7 });
      client.proto.send('not compressed');
      server.proto.receiveData(client.take());
      assert.deepEqual(server.events, [
        ...texts.map((message) => ({ message, binary: false })),
        { message: '00010203ff', binary: true },
        { message: 'fragmented '.repeat(100), binary: false },
        { message: 'not compressed', binary: false },
      ]);
      for (const e of server.events) if ('message' in e && !e.binary) server.proto.send(e.message, { compress: true });
      client.proto.receiveData(server.take());
      assert.deepEqual(
        client.events.map((e) => ('message' in e ? e.message : e)),
        server.events.filter((e) => 'message' in e && !e.binary).map((e) => ('message' in e ? e.message : e)),
      );
    });
  }

  test('a compressed message is framed with RSV1 on its first frame only', () => {
    const server = peer('server', TAKEOVER);
    server.proto.send('abc'.repeat(100), { compress: true, fragmentSize: 4 });
    const bytes = server.take();
    assert.equal(bytes[0], 0x41); // text, RSV1, not final
    let offset = 0;
    let frames = 0;
    while (offset < bytes.length) {
      if (frames > 0) assert.equal(bytes[offset]! & 0x70, 0, `frame ${frames} has RSV bits`);
      offset += 2 + (bytes[offset + 1]! & 0x7f);
      frames++;
    }
    assert.ok(frames > 1);
  });

  test('control frames are never compressed, and compress is ignored without a negotiated codec', () => {
    const plain = peer('server', null);
    plain.proto.send('Hello', { compress: true });
    plain.proto.ping('x');
    assert.equal(plain.take().toString('hex'), '810548656c6c6f' + '890178');
  });
});

describe('violations with permessage-deflate', () => {
  function serverGets(frames: Buffer[], params: DeflateParams | null = TAKEOVER, options: Partial<ProtocolOptions> = {}) {
    const server = peer('server', params, options);
    for (const frame of frames) server.proto.receiveData(frame);
    return { events: server.events, sent: server.take() };
  }
  const masked = (opcode: number, payload: Buffer, rsv1: boolean, fin = true): Buffer =>
    Buffer.concat(encodeFrame(opcode, payload, { rsv1, fin, mask: true }));

  test('RSV1 without a negotiated extension is 1002', () => {
    const { events } = serverGets([masked(Opcode.Text, hex('f248cdc9c90700'), true)], null);
    assert.deepEqual(events, [{ error: 'RESERVED_BITS', closeCode: 1002 }]);
  });

  test('RSV1 on a continuation frame is 1002', () => {
    const { events } = serverGets([
      masked(Opcode.Text, hex('f248cd'), true, false),
      masked(Opcode.Continuation, hex('c9c90700'), true),
    ]);
    assert.deepEqual(events, [{ error: 'RESERVED_BITS', closeCode: 1002 }]);
  });

  test('RSV1 on a control frame is 1002', () => {
    const { events } = serverGets([masked(Opcode.Ping, Buffer.alloc(0), true)]);
    assert.deepEqual(events, [{ error: 'RESERVED_BITS', closeCode: 1002 }]);
  });

  test('bytes that do not inflate are 1007', () => {
    const { events, sent } = serverGets([masked(Opcode.Binary, hex('ff ff ff ff'), true)]);
    assert.deepEqual(events, [{ error: 'INVALID_COMPRESSED_DATA', closeCode: 1007 }]);
    assert.equal(sent.readUInt16BE(2), 1007);
  });

  test('compressed text that inflates to invalid UTF-8 is 1007', () => {
    const bad = codec(TAKEOVER, 'client').compress(Buffer.from([0x48, 0xc3, 0x28]))!;
    const { events } = serverGets([masked(Opcode.Text, bad, true)]);
    assert.deepEqual(events, [{ error: 'INVALID_UTF8', closeCode: 1007 }]);
  });

  test('a compression bomb: 16 MiB of zeros in a frame of some 16 KiB closes with 1009', () => {
    const bomb = codec(NO_TAKEOVER, 'client').compress(Buffer.alloc(16 * 1024 * 1024))!;
    assert.ok(bomb.length < 20_000, `bomb is ${bomb.length} bytes`);
    const { events, sent } = serverGets([masked(Opcode.Binary, bomb, true)], TAKEOVER, { maxPayload: 64 * 1024 });
    assert.deepEqual(events, [{ error: 'MESSAGE_TOO_BIG', closeCode: 1009 }]);
    assert.equal(sent.readUInt16BE(2), 1009);
  });

  test('a message that inflates to exactly maxPayload passes', () => {
    const data = codec(NO_TAKEOVER, 'client').compress(Buffer.alloc(1000, 0x61))!;
    const { events } = serverGets([masked(Opcode.Text, data, true)], TAKEOVER, { maxPayload: 1000 });
    assert.deepEqual(events, [{ message: 'a'.repeat(1000), binary: false }]);
  });
});

describe('where a compressed message must end (RFC 7692 §7.2.2)', () => {
  // A message is deflate blocks ending at a block boundary: the tail the receiver appends
  // completes an empty stored block. After a final block (BFINAL), §7.2.3.4 allows only the
  // header byte of that empty block.
  const hello = hex('f2 48 cd c9 c9 07 00'); // "Hello", a fixed block, sync-flushed
  const helloFinal = hex('f3 48 cd c9 c9 07 00'); // the same block with BFINAL set
  const frameFor = (role: Role, payload: Buffer): Buffer =>
    Buffer.concat(encodeFrame(Opcode.Text, payload, { rsv1: true, mask: role === 'server' }));

  for (const role of ['server', 'client'] as const) {
    const gets = (payload: Buffer): Event[] => {
      const receiver = peer(role, TAKEOVER);
      receiver.proto.receiveData(frameFor(role, payload));
      return receiver.events;
    };

    test(`${role}: a final block, alone or followed by §7.2.3.4's empty stored block header, is a message`, () => {
      assert.deepEqual(gets(helloFinal), [{ message: 'Hello', binary: false }]);
      assert.deepEqual(gets(Buffer.concat([helloFinal, hex('00')])), [{ message: 'Hello', binary: false }]);
    });

    test(`${role}: data after the final block is 1007`, () => {
      for (const after of [hex('00 00'), hex('01'), hello, Buffer.from('garbage')]) {
        assert.deepEqual(gets(Buffer.concat([helloFinal, after])), [{ error: 'INVALID_COMPRESSED_DATA', closeCode: 1007 }], after.toString('hex'));
      }
    });

    test(`${role}: a message cut inside a block is 1007`, () => {
      // A stored block announcing 5 bytes, with 3 of them: the appended tail would otherwise be read as its data.
      assert.deepEqual(gets(hex('00 05 00 fa ff 48 65 6c')), [{ error: 'INVALID_COMPRESSED_DATA', closeCode: 1007 }]);
      const long = codec(NO_TAKEOVER, role === 'server' ? 'client' : 'server').compress(Buffer.from('the quick brown fox '.repeat(50)))!;
      for (const cut of [1, 5, long.length >> 1, long.length - 1]) {
        assert.deepEqual(gets(long.subarray(0, cut)), [{ error: 'INVALID_COMPRESSED_DATA', closeCode: 1007 }], `cut at ${cut}`);
      }
    });

    test(`${role}: an empty payload is an empty message; so is an empty stored block`, () => {
      assert.deepEqual(gets(Buffer.alloc(0)), [{ message: '', binary: false }]);
      assert.deepEqual(gets(hex('00')), [{ message: '', binary: false }]);
    });
  }
});
