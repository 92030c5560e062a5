// Bundles the client SDK (src/client) into dist/hotline.js, one browser ES module, which
// `hotline serve` serves at /hotline.js. esbuild does the bundling and minifying; a
// `node:` import reaching the bundle fails the build (browsers have none).
//
// src/wire's modules only define things (it imports nothing and runs nothing at load), so
// they are declared free of side effects: what the SDK does not use of them (the request
// validation's tables, the limits) is left out instead of kept for its top-level code.
import { build } from 'esbuild';
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outfile = join(root, 'dist', 'hotline.js');

const wire = join(root, 'src', 'wire');
const wireHasNoSideEffects = {
  name: 'wire-has-no-side-effects',
  setup(build) {
    build.onResolve({ filter: /\.js$/ }, (args) => {
      const path = join(args.resolveDir, args.path.replace(/\.js$/, '.ts'));
      return dirname(path) === wire ? { path, sideEffects: false } : undefined;
    });
  },
};

await build({
  entryPoints: [join(root, 'src', 'client', 'index.ts')],
  outfile,
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  minify: true,
  sourcemap: true,
  legalComments: 'none',
  logLevel: 'warning',
  plugins: [wireHasNoSideEffects],
});

const code = readFileSync(outfile);
const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
console.log(`dist/hotline.js: ${kib(code.length)} minified, ${kib(gzipSync(code, { level: 9 }).length)} gzipped`);
