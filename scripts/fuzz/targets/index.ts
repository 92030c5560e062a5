// Every fuzz target by name: the public ones `npm run fuzz` runs, and the hidden self-tests.
import type { Target } from '../driver/input.js';
import { dribbleTarget } from './dribble.js';
import { extensionsTarget } from './extensions.js';
import { fragmentsTarget } from './fragments.js';
import { frameTarget } from './frames.js';
import { requestTarget } from './http-request.js';
import { inflateTarget } from './inflate.js';
import { responseTarget } from './http-response.js';
import { msgpackTarget } from './parse-msgpack.js';
import { wireTarget } from './parse-request.js';
import { SELF_TESTS } from './selftests.js';

export const TARGETS: ReadonlyMap<string, Target> = new Map(
  [
    frameTarget('server', false),
    frameTarget('client', false),
    frameTarget('server', true),
    frameTarget('client', true),
    fragmentsTarget(),
    dribbleTarget(),
    inflateTarget(),
    requestTarget(),
    responseTarget(),
    extensionsTarget(),
    wireTarget(),
    msgpackTarget(),
    ...SELF_TESTS,
    fragmentsTarget(true),
  ].map((t) => [t.name, t]),
);

export const PUBLIC_TARGETS: readonly string[] = [...TARGETS.values()].filter((t) => t.hidden !== true).map((t) => t.name);
