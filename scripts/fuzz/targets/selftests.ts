// Self-tests of the harness (hidden: run only when named): each plants one kind of
// finding (an exception, a slow input, a hang, a leak) that the driver must report.
import { Buffer } from 'node:buffer';
import { performance } from 'node:perf_hooks';
import { chooseSplits, type FuzzInput, type Problem, type Target } from '../driver/input.js';

const leaked: unknown[] = [];
let leakStart = 0;

function selfTest(name: string, description: string, check: (input: FuzzInput) => Problem | null): Target {
  return {
    name,
    description,
    hidden: true,
    variants: 1,
    describeVariant: () => 'only',
    generate(rng) {
      let data = rng.bytes(rng.size(200));
      if (rng.chance(0.3)) {
        const at = rng.int(data.length + 1);
        data = Buffer.concat([data.subarray(0, at), Buffer.from([0xde, 0xad]), data.subarray(at)]);
      }
      return { variant: 0, splits: chooseSplits(rng, data.length), data };
    },
    check,
  };
}

export const SELF_TESTS: Target[] = [
  selfTest('selftest-exception', 'throws a RangeError on any input holding de ad', (input) => {
    if (input.data.includes(Buffer.from([0xde, 0xad]))) throw new RangeError('planted');
    return null;
  }),
  selfTest('selftest-slow', 'busy for 100 ms on inputs that start with 01', (input) => {
    if (input.data[0] === 0x01) {
      const until = performance.now() + 100;
      while (performance.now() < until);
    }
    return null;
  }),
  selfTest('selftest-hang', 'never returns on inputs that start with 00', (input) => {
    // eslint-disable-next-line no-empty
    if (input.data[0] === 0x00) for (;;) {}
    return null;
  }),
  selfTest('selftest-leak', 'keeps 64 MiB per second of running (up to 192 MiB), however fast inputs run', () => {
    const now = performance.now();
    if (leakStart === 0) leakStart = now;
    // In 16 KiB arrays: 4 per millisecond.
    const due = Math.min(12_288, Math.floor((now - leakStart) * 4));
    while (leaked.length < due) leaked.push(new Array<number>(2048).fill(leaked.length));
    return null;
  }),
];
