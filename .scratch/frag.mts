import { clientFrame, rawConnect, startTarget, MiB } from '../test/support/attack.ts';
import { Buffer } from 'node:buffer';
const target = await startTarget([], { nodeArgs: ['--max-old-space-size=256'] });
console.log('baseline', target.rss()/MiB);
const conn = await rawConnect(target.port, '/echo');
const size = Number(process.argv[2] ?? 100000);
const frames: Buffer[] = []; let pending = 0; const t0 = Date.now();
const byte = Buffer.from('a');
for (let i = 0; i < size; i++) {
  const f = clientFrame(i === 0 ? 1 : 0, byte, i === size - 1); frames.push(f); pending += f.length;
  if (pending >= 65536) { const ok = conn.socket.write(Buffer.concat(frames)); frames.length = 0; pending = 0; if (!ok) await new Promise(r => conn.socket.once('drain', r)); }
}
conn.socket.write(Buffer.concat(frames));
console.log('sent in', Date.now() - t0, 'rss', target.rss()/MiB);
const t1 = Date.now();
while (conn.received().length < 10 + size && target.alive() && Date.now() - t1 < 60000) await new Promise(r => setTimeout(r, 100));
console.log('got', conn.received().length, 'alive', target.alive(), 'rss', target.rss()/MiB, 'ms', Date.now()-t1);
console.log(target.output().slice(-500));
await target.stop(); process.exit(0);
