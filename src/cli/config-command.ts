// `hotline config check FILE` and `hotline config init [FILE]`: the config file's own
// commands, so that a file can be checked (in CI, before a deploy) without starting a server.
import { writeFileSync } from 'node:fs';
import { ConfigError, readConfigFile, summarize } from '../server/config/load.js';
import { STARTER_CONFIG } from '../server/config/starter.js';
import { parseCommandArgs, usageError as fail } from './args.js';

export const CONFIG_USAGE = `usage: hotline config check FILE
       hotline config init [FILE]

  check FILE    validate a config file of hotline serve: exit 0 with a summary of what it
                sets, or exit 1 with one line per problem (the file, the key, what was expected)
  init [FILE]   write a commented starter config (default hotline.json); an existing file is
                never overwritten

The file is JSON with // and /* */ comments. hotline serve --config FILE reads it (or
HOTLINE_CONFIG); flags and HOTLINE_* variables win over its keys.
`;

export async function configCommand(args: string[]): Promise<number> {
  const parsed = parseCommandArgs(args, {});
  if (typeof parsed === 'string') return fail(`config: ${parsed}`);
  const [action, file, ...extra] = parsed.positionals;
  if (extra.length > 0) return fail(`config ${action}: unexpected argument '${extra[0]}'`);
  switch (action) {
    case 'check': {
      if (file === undefined) return fail('config check needs a FILE: hotline config check hotline.json');
      try {
        const layer = readConfigFile(file);
        process.stdout.write(`${file}: ok (${summarize(layer)})\n`);
        return 0;
      } catch (error) {
        if (!(error instanceof ConfigError)) throw error;
        process.stderr.write(`${error.message}\n`);
        return 1;
      }
    }
    case 'init': {
      const target = file ?? 'hotline.json';
      try {
        writeFileSync(target, STARTER_CONFIG, { flag: 'wx' });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        process.stderr.write(`hotline: ${target}: ${code === 'EEXIST' ? 'already exists; not overwritten' : `cannot write: ${code ?? String(error)}`}\n`);
        return 1;
      }
      process.stdout.write(`wrote ${target}; check it with: hotline config check ${target}; use it with: hotline serve --config ${target}\n`);
      return 0;
    }
    case undefined:
      return fail(`config needs check or init\n\n${CONFIG_USAGE}`);
    default:
      return fail(`config: unknown action '${action}' (check or init)`);
  }
}
