// The API reference: TypeDoc over the package's public entry points (typedoc.json), written
// to docs/api (not checked in), and the count of exported symbols that carry a doc comment.
//
//   node scripts/api-reference.mjs            write docs/api and print the coverage
//   node scripts/api-reference.mjs --check    print the coverage and every undocumented
//                                             symbol; exit 1 if there is one (no output)
//   --options FILE                            another TypeDoc configuration (default
//                                             typedoc.json): test/api-reference.test.ts
//                                             checks a planted project with it
import { Application, ReflectionKind } from 'typedoc';

const check = process.argv.includes('--check');
const optionsAt = process.argv.indexOf('--options');
const options = optionsAt === -1 ? 'typedoc.json' : process.argv[optionsAt + 1];

/** What a reader looks up: each needs a comment of its own (constructors are described by their class). */
const DOCUMENTED_KINDS =
  ReflectionKind.Enum |
  ReflectionKind.EnumMember |
  ReflectionKind.Variable |
  ReflectionKind.Function |
  ReflectionKind.Class |
  ReflectionKind.Interface |
  ReflectionKind.Property |
  ReflectionKind.Method |
  ReflectionKind.Accessor |
  ReflectionKind.TypeAlias;

// The check leaves type errors to `npm run typecheck` (npm test runs it first): skipping
// TypeDoc's own pass over the program takes about a quarter off the check's time.
const app = await Application.bootstrapWithPlugins({ options, logLevel: 'Error', skipErrorChecking: check });
const project = await app.convert();
if (project === undefined) {
  console.error('api-reference: TypeDoc could not convert the project');
  process.exit(1);
}

/** A symbol is documented when it, one of its signatures, or its accessor's getter has a comment. */
function documented(reflection) {
  if (reflection.hasComment()) return true;
  const signatures = [
    ...(reflection.signatures ?? []),
    ...(reflection.getSignature ? [reflection.getSignature] : []),
    ...(reflection.setSignature ? [reflection.setSignature] : []),
    ...(reflection.type?.declaration?.signatures ?? []),
  ];
  return signatures.some((signature) => signature.hasComment());
}

/** Members inherited from a type outside the package (Error, EventTarget) are documented there. */
function ownSymbol(reflection) {
  if (reflection.inheritedFrom !== undefined) return false;
  const sources = reflection.sources ?? reflection.signatures?.[0]?.sources ?? reflection.getSignature?.sources ?? [];
  return !sources.some((source) => source.fullFileName.includes('/node_modules/'));
}

const symbols = project.getReflectionsByKind(DOCUMENTED_KINDS).filter(ownSymbol);
const missing = symbols.filter((reflection) => !documented(reflection)).map((reflection) => reflection.getFullName());
const share = symbols.length === 0 ? 100 : (100 * (symbols.length - missing.length)) / symbols.length;
console.log(`api reference: ${symbols.length - missing.length} of ${symbols.length} exported symbols documented (${share.toFixed(1)}%)`);

if (check) {
  for (const name of missing) console.log(`  undocumented: ${name}`);
  process.exit(missing.length === 0 ? 0 : 1);
}
await app.generateDocs(project, app.options.getValue('out'));
console.log(`api reference: written to ${app.options.getValue('out')}`);
