// The package as a user gets it: `npm pack` of this checkout (its prepack and prepare
// scripts run, as on a publish), installed with `npm install ./hotline-X.tgz` into a fresh
// project in a temporary directory. Installing a local tarball needs no network. hotline's
// own dependencies (jose, ajv, jsonc-parser, @msgpack/msgpack), which a user's npm would fetch, are linked
// from this checkout's node_modules, at the versions its lockfile holds, as is what the
// user's project would install beside it (zod, redis, @types/node, a framework): no
// registry is reached from the tests.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, existsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export interface PackedProject {
  /** The fresh project: package.json (type module) and node_modules/hotline from the tarball. */
  dir: string;
  tarball: string;
  /** What `npm pack` printed besides its JSON: the lifecycle scripts it ran, and their output. */
  packLog: string;
  /** Paths inside the tarball. */
  files: string[];
  /** The `hotline` command npm linked from the package's `bin`. */
  bin: string;
  /** Links packages from this checkout's node_modules into the project; returns those it does not have. */
  link(names: Iterable<string>): string[];
  remove(): void;
}

function npm(args: string[], cwd: string): { stdout: string; stderr: string } {
  const result = spawnSync('npm', args, { cwd, encoding: 'utf8', env: { ...process.env, npm_config_update_notifier: 'false' } });
  if (result.status !== 0) throw new Error(`npm ${args.join(' ')} failed (${result.status}):\n${result.stdout}\n${result.stderr}`);
  return { stdout: result.stdout, stderr: result.stderr };
}

/** Packs this checkout and installs the tarball into a new temporary project. */
export function packAndInstall(): PackedProject {
  const dir = mkdtempSync(join(tmpdir(), 'hotline-packed-'));
  const packed = npm(['pack', '--pack-destination', dir, '--json'], ROOT);
  // The scripts print on stdout before npm's JSON.
  const json = packed.stdout.indexOf('[\n');
  const [info] = JSON.parse(packed.stdout.slice(json)) as Array<{ filename: string; files: Array<{ path: string }> }>;
  const tarball = join(dir, info!.filename);
  const own = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { dependencies?: Record<string, string> }).dependencies ?? {};
  const dependencies = Object.fromEntries(Object.keys(own).map((name) => [name, `file:${join(ROOT, 'node_modules', name)}`]));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'hotline-user-app', private: true, type: 'module', dependencies }, null, 2));
  // Without scripts: a dependency linked from a directory would run its `prepare` (its own
  // build, @msgpack/msgpack's needs webpack), which the registry's tarball a user gets never does.
  npm(['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', '--ignore-scripts', `./${info!.filename}`], dir);
  return {
    dir,
    tarball,
    packLog: `${packed.stderr}\n${packed.stdout.slice(0, json)}`,
    files: info!.files.map((f) => f.path),
    bin: join(dir, 'node_modules', '.bin', 'hotline'),
    link(names) {
      const missing: string[] = [];
      for (const name of names) {
        const target = join(dir, 'node_modules', name);
        if (existsSync(target)) continue;
        const source = join(ROOT, 'node_modules', name);
        if (!existsSync(source)) {
          missing.push(name);
          continue;
        }
        mkdirSync(dirname(target), { recursive: true });
        symlinkSync(source, target, 'dir');
      }
      return missing;
    },
    remove() {
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
