// Garbage collection on demand (exposed at run time when the process was not started with
// --expose-gc) and the heap measure the driver and memory oracles compare.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collect: (() => void) | null = null;
/** Full collections: two by default (the second frees what finalizers of the first released). */
export function gc(times = 2): void {
  if (collect === null) {
    const exposed = (globalThis as { gc?: () => void }).gc;
    if (exposed !== undefined) collect = exposed;
    else {
      setFlagsFromString('--expose-gc');
      collect = runInNewContext('gc') as () => void;
    }
  }
  for (let i = 0; i < times; i++) collect();
}

/** Used heap plus array buffers: what a run keeps alive, inside V8 and outside it. */
export function heapNow(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
}
