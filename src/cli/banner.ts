// The lines `hotline serve` prints once it listens: where each surface is, at an address a
// browser can open (not 0.0.0.0), who may use the operator surfaces, and which engine
// keeps the channels.
import { networkInterfaces, type NetworkInterfaceInfo } from 'node:os';
import type { AdminAccess } from '../server/admin.js';

export interface BannerInput {
  host: string;
  port: number;
  secure: boolean;
  /** The engine, as it is to be shown (a Redis URL without its password). */
  engine: string;
  inspector: { access: AdminAccess; turnedOff: boolean };
  metrics: { access: AdminAccess; turnedOff: boolean };
  /** Worker processes sharing the port (default 1: this process alone). */
  workers?: number;
}

type Interfaces = NodeJS.Dict<NetworkInterfaceInfo[]>;

/** Whether `host` means every interface: nobody can open that address. */
export function isWildcardHost(host: string): boolean {
  return host === '0.0.0.0' || host === '::' || host === '[::]' || host === '';
}

/** The address other machines can reach this one at: the first non-internal IPv4 (or, on `::`, global IPv6) address; null for none. */
export function externalAddress(host: string, interfaces: Interfaces = networkInterfaces()): string | null {
  const all = Object.values(interfaces).flatMap((list) => list ?? []).filter((i) => !i.internal);
  const v4 = all.find((i) => i.family === 'IPv4');
  if (v4 !== undefined) return v4.address;
  if (host === '0.0.0.0') return null;
  // Link-local IPv6 needs a zone to be reached: not worth printing.
  const v6 = all.find((i) => i.family === 'IPv6' && !/^fe[89ab]/i.test(i.address));
  return v6 === undefined ? null : `[${v6.address}]`;
}

/** The startup line of an operator surface: where it is, and who may use it. */
function adminLine(url: string, access: AdminAccess, turnedOff: boolean, flag: string): string {
  if (access === 'secret') return `${url} (admin secret required)`;
  if (access === 'open') return url;
  if (turnedOff) return `off (--no-${flag})`;
  return `off: listening beyond loopback without an admin secret (set HOTLINE_ADMIN_SECRET, or --${flag} to open it to anyone)`;
}

/** The startup lines, each ending with a newline. */
export function banner(input: BannerInput, interfaces?: Interfaces): string {
  const [http, ws] = input.secure ? ['https', 'wss'] : ['http', 'ws'];
  const bound = `${input.host.includes(':') && !input.host.startsWith('[') ? `[${input.host}]` : input.host}:${input.port}`;
  const lines: string[] = [];
  let base = bound;
  if (isWildcardHost(input.host)) {
    const local = `${input.host === '0.0.0.0' ? '127.0.0.1' : '[::1]'}:${input.port}`;
    const external = externalAddress(input.host, interfaces);
    base = external === null ? local : `${external}:${input.port}`;
    lines.push(
      `hotline listening on ${http}://${bound}/ (every interface)`,
      external === null
        ? `  open       ${http}://${local}/ (no address beyond this machine was found)`
        : `  open       ${http}://${base}/ from other machines, ${http}://${local}/ from this one`,
    );
  } else lines.push(`hotline listening on ${http}://${bound}/`);
  lines.push(
    `  echo       ${ws}://${base}/echo`,
    `  channels   ${ws}://${base}/ws`,
    `  engine     ${input.engine}`,
    ...((input.workers ?? 1) > 1 ? [`  workers    ${input.workers} processes share the port (each holds its own inspector and /metrics)`] : []),
    `  demos      ${http}://${base}/demo/echo  ${http}://${base}/demo/chat`,
    `  inspect    ${adminLine(`${http}://${base}/inspect`, input.inspector.access, input.inspector.turnedOff, 'inspector')}`,
    `  metrics    ${adminLine(`${http}://${base}/metrics`, input.metrics.access, input.metrics.turnedOff, 'metrics')}`,
  );
  return lines.map((line) => `${line}\n`).join('');
}

/** How the in-memory engine is shown. */
export const MEMORY_ENGINE = 'memory: channels, history and presence live in this process and are lost on restart (--redis shares them)';
