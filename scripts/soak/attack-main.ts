// The soak's attackers in a process of their own, so that their work does not slow the
// well-behaved clients' event loop (only the server is meant to feel them):
//
//   node --import tsx scripts/soak/attack-main.ts PORT NAME[,NAME…]
//
// Prints `attacking` once every attacker has started; when stdin ends, stops them and
// prints `outcomes JSON` ({name: {outcomes: {label: n}, violations: [...]}}), then exits.
import { createInterface } from 'node:readline';
import { Attacker, parseAttacks } from './attackers.js';

const port = Number(process.argv[2]);
const attackers = parseAttacks(process.argv[3]).map((name) => new Attacker(name, port));
for (const attacker of attackers) attacker.start();
process.stdout.write('attacking\n');
createInterface({ input: process.stdin }).on('close', () => {
  void Promise.all(attackers.map((a) => a.stop())).then(() => {
    const report = Object.fromEntries(attackers.map((a) => [a.name, { outcomes: Object.fromEntries(a.outcomes), violations: a.violations }]));
    process.stdout.write(`outcomes ${JSON.stringify(report)}\n`, () => process.exit(0));
  });
});
