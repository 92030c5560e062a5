/**
 * Realistic JSON messages for the permessage-deflate benchmark (bench/deflate.ts): chat
 * messages of about 150 bytes and JSON documents of a given size, several distinct ones of
 * each, so that a server compressing with context takeover does not get to echo the very
 * same bytes again and again (which would compress to a few bytes of back-reference).
 *
 * Deterministic (a seeded generator): the parent and the load generator build the same ones.
 */
import { Buffer } from 'node:buffer';

/** mulberry32: a small seeded generator, good enough to pick words. */
function generator(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function pick<T>(random: () => number, items: readonly T[]): T {
  return items[Math.floor(random() * items.length)]!;
}

const USERS = ['alice', 'bob', 'carol', 'dmitri', 'eve', 'farah', 'gustavo', 'hiroshi', 'ines', 'jamal', 'kasia', 'liam'];
/** Chat is words people reuse in sentences they do not: texts are drawn from a vocabulary. */
const WORDS = (
  'the a to and is it on for this that we you I can did anyone look at deploy logs last night lunch usual place book ' +
  'table build green again thanks quick fix share slides morning pushed login redirect please review when have moment ' +
  'yes meeting moved 3pm same room who call weekend staging database back up great work release everyone offline ' +
  'tomorrow Thursday does new dashboard load slowly else ok merging now customer confirmed issue gone after update ' +
  'reminder retro bring notes move sync next week too many things in flight café demain ça marche 👍 🎉 PR ticket ' +
  'bug test flaky CI pipeline cache coffee meet hour minutes late sorry sounds good let me check will do done ' +
  'approved rollback alert pager latency spike region users report error page blank retry works fine'
).split(' ');

/** A chat line of 4 to 16 words. */
function sentence(random: () => number): string {
  const count = 4 + Math.floor(random() * 13);
  const words: string[] = [];
  for (let i = 0; i < count; i++) words.push(pick(random, WORDS));
  const text = words.join(' ');
  return text[0]!.toUpperCase() + text.slice(1) + pick(random, ['', '', '.', '?', '!']);
}

/**
 * `count` distinct chat messages of the shape
 * {"op":"msg","ch":"room:42","offset":1234,"data":{"user":"alice","text":"…","ts":…}},
 * about 150 bytes on average (the texts vary, as chat does).
 */
export function chatMessages(count: number): Buffer[] {
  const random = generator(42);
  const out: Buffer[] = [];
  let offset = 18_231;
  let ts = 1_718_040_000_000;
  for (let i = 0; i < count; i++) {
    offset += 1;
    ts += 200 + Math.floor(random() * 5_000);
    const message = {
      op: 'msg',
      ch: 'room:42',
      offset,
      data: { user: pick(random, USERS), text: sentence(random), ts },
    };
    out.push(Buffer.from(JSON.stringify(message)));
  }
  return out;
}

const FIRST = ['Alice', 'Bruno', 'Chloé', 'Daniel', 'Emma', 'Felix', 'Grace', 'Hugo', 'Ines', 'Jonas', 'Kenji', 'Lena', 'Mateo', 'Nora'];
const LAST = ['Martin', 'Schmidt', 'Rossi', 'García', 'Nowak', 'Dubois', 'Jensen', 'Silva', 'Tanaka', 'Novak', 'Fischer', 'Moreau'];
const ROLES = ['viewer', 'editor', 'admin', 'owner'];
const PLANS = ['free', 'team', 'business', 'enterprise'];
const TAGS = ['beta', 'eu-west', 'us-east', 'newsletter', 'trial', 'sso', 'mobile', 'api', 'priority', 'legacy'];
const CITIES: ReadonlyArray<[string, string]> = [
  ['Lyon', 'FR'],
  ['Berlin', 'DE'],
  ['Milano', 'IT'],
  ['Madrid', 'ES'],
  ['Kraków', 'PL'],
  ['Aarhus', 'DK'],
  ['Porto', 'PT'],
  ['Osaka', 'JP'],
  ['Toronto', 'CA'],
  ['Austin', 'US'],
];

function isoDate(random: () => number): string {
  const ms = Date.UTC(2021, 0, 1) + Math.floor(random() * 3 * 365 * 86_400_000);
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/** One record of a typical API listing (users of a SaaS account). */
function record(random: () => number, id: number): Record<string, unknown> {
  const first = pick(random, FIRST);
  const last = pick(random, LAST);
  const [city, country] = pick(random, CITIES);
  const tags = TAGS.filter(() => random() < 0.2);
  return {
    id,
    name: `${first} ${last}`,
    email: `${first.toLowerCase()}.${last.toLowerCase()}${Math.floor(random() * 100)}@example.com`,
    active: random() < 0.8,
    role: pick(random, ROLES),
    plan: pick(random, PLANS),
    score: Math.round(random() * 10_000) / 100,
    tags,
    created: isoDate(random),
    lastLogin: isoDate(random),
    address: { city, country, zip: String(10_000 + Math.floor(random() * 89_999)) },
  };
}

/**
 * `count` distinct JSON documents of exactly `size` bytes each: {"items":[records…]}, with
 * spaces before the closing brackets to make up the exact size.
 */
export function jsonDocuments(count: number, size: number): Buffer[] {
  const out: Buffer[] = [];
  for (let d = 0; d < count; d++) {
    const random = generator(1_000 + d);
    const head = `{"page":${d + 1},"items":[`;
    const end = ']}';
    let body = '';
    let id = 100_000 + d * 10_000;
    for (;;) {
      const next = JSON.stringify(record(random, id++));
      const candidate = body === '' ? next : `${body},${next}`;
      if (Buffer.byteLength(head + candidate + end) > size) break;
      body = candidate;
    }
    const text = head + body;
    const pad = size - Buffer.byteLength(text) - end.length;
    if (pad < 0 || body === '') throw new Error(`jsonDocuments: ${size} B is too small for a record`);
    const doc = Buffer.from(text + ' '.repeat(pad) + end);
    if (doc.length !== size) throw new Error('jsonDocuments: size mismatch');
    JSON.parse(doc.toString());
    out.push(doc);
  }
  return out;
}

/** Which messages a deflate job sends (see DeflateMessages in load-jobs.ts). */
export interface PayloadSpec {
  payload: 'chat' | 'document';
  /** Document size in bytes (ignored for chat). */
  size: number;
  /** How many distinct messages are cycled through. */
  variety: number;
}

export function deflatePayloads(spec: PayloadSpec): Buffer[] {
  return spec.payload === 'chat' ? chatMessages(spec.variety) : jsonDocuments(spec.variety, spec.size);
}
