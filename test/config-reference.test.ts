// docs/serve/configuration.md's reference is generated from the options table and the
// sections' leaves: it must be what the generator writes now, and name every key.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { PAGE, withReference } from '../scripts/config-reference.js';
import { SERVE_OPTION_KEYS } from '../src/server/options.js';
import { SECTION_SETTINGS, sectionPath } from '../src/server/config/schema.js';
import { STARTER_CONFIG } from '../src/server/config/starter.js';
import { parseConfigText } from '../src/server/config/load.js';

test('the config reference is up to date (node --import tsx scripts/config-reference.ts rewrites it)', () => {
  const page = readFileSync(PAGE, 'utf8');
  assert.equal(withReference(page), page);
});

test('the reference names every key, flat and in sections, with its flag and variable', () => {
  const page = readFileSync(PAGE, 'utf8');
  for (const key of SERVE_OPTION_KEYS) assert.match(page, new RegExp(`^\\| \`${key}\` \\| \`--`, 'm'), key);
  for (const s of SECTION_SETTINGS) assert.ok(page.includes(`| \`${sectionPath(s).join('.')}\` |`), sectionPath(s).join('.'));
});

test('the starter config that hotline config init writes passes the loader', () => {
  assert.doesNotThrow(() => parseConfigText('hotline.json', STARTER_CONFIG));
});
