/**
 * Two independent copies of the `ws` package's frame codec (its Receiver and Sender), one
 * running on plain JavaScript masking and one on `bufferutil`'s native masking, so both can
 * be measured in the same process.
 *
 * ws decides once, when its buffer-util module loads, whether to use bufferutil (unless
 * WS_NO_BUFFER_UTIL is set). So: load ws's modules with the variable set, drop every ws
 * module from the require cache, unset the variable and load them again. ws's package
 * exports map hides lib/, so the files are required by absolute path.
 *
 * Only the members of ws's internals that the benchmarks use are typed, below.
 */
import type { Buffer } from 'node:buffer';
import { createRequire } from 'node:module';
import { dirname, join, sep } from 'node:path';

/** ws's Receiver: a Writable that parses frames and emits whole messages. */
export interface WsReceiver {
  write(chunk: Buffer): boolean;
  on(event: 'message', listener: (data: Buffer, isBinary: boolean) => void): this;
  on(event: 'error', listener: (error: Error) => void): this;
  /** The Writable's error, set synchronously when a frame is rejected. */
  readonly errored: Error | null;
}

export interface WsReceiverOptions {
  isServer: boolean;
  maxPayload: number;
  skipUTF8Validation: boolean;
  binaryType?: 'nodebuffer';
  allowSynchronousEvents?: boolean;
}

export type WsReceiverClass = new (options: WsReceiverOptions) => WsReceiver;

/** Options of ws's static `Sender.frame`. */
export interface WsFrameOptions {
  fin: boolean;
  rsv1: boolean;
  opcode: number;
  mask: boolean;
  /** Whether `data` must be left untouched (masking then copies into one merged buffer). */
  readOnly: boolean;
  maskBuffer?: Buffer;
}

export interface WsSenderClass {
  /** Frames `data`; returns the header and payload buffers to write in order. */
  frame(data: Buffer | string, options: WsFrameOptions): (Buffer | string)[];
}

/** ws's buffer-util module: its masking functions are what bufferutil replaces. */
export interface WsBufferUtil {
  mask(source: Buffer, mask: Buffer, output: Buffer, offset: number, length: number): void;
  unmask(buffer: Buffer, mask: Buffer): void;
}

export interface WsCodec {
  /** 'ws' or 'ws+bufferutil'. */
  label: string;
  Receiver: WsReceiverClass;
  Sender: WsSenderClass;
  bufferUtil: WsBufferUtil;
  /** Whether this copy's masking goes through bufferutil (checked, not assumed). */
  usesBufferUtil: boolean;
}

export interface WsCodecs {
  version: string;
  plain: WsCodec;
  native: WsCodec;
}

const require = createRequire(import.meta.url);

function isFunction(value: unknown): value is (...args: never[]) => unknown {
  return typeof value === 'function';
}

function loadCopy(wsDir: string, label: string): Omit<WsCodec, 'usesBufferUtil'> {
  const Receiver: unknown = require(join(wsDir, 'lib', 'receiver.js'));
  const SenderModule: unknown = require(join(wsDir, 'lib', 'sender.js'));
  const bufferUtil: unknown = require(join(wsDir, 'lib', 'buffer-util.js'));
  if (!isFunction(Receiver)) throw new Error(`${label}: ws/lib/receiver.js did not export a class`);
  const frame: unknown = isFunction(SenderModule) ? (SenderModule as { frame?: unknown }).frame : undefined;
  if (!isFunction(frame)) throw new Error(`${label}: ws/lib/sender.js has no static frame()`);
  const util = bufferUtil as { mask?: unknown; unmask?: unknown } | null;
  if (util === null || !isFunction(util.mask) || !isFunction(util.unmask)) {
    throw new Error(`${label}: ws/lib/buffer-util.js lacks mask/unmask`);
  }
  return {
    label,
    Receiver: Receiver as unknown as WsReceiverClass,
    Sender: SenderModule as unknown as WsSenderClass,
    bufferUtil: bufferUtil as WsBufferUtil,
  };
}

function dropFromCache(wsDir: string): number {
  const prefix = wsDir + sep;
  let dropped = 0;
  for (const key of Object.keys(require.cache)) {
    if (key.startsWith(prefix)) {
      delete require.cache[key];
      dropped++;
    }
  }
  return dropped;
}

/**
 * Whether ws's masking in this copy is bufferutil's: the plain JavaScript fallbacks are
 * named `_mask` and `_unmask`, the bufferutil wrappers are anonymous and call `bufferUtil`.
 */
function detectBufferUtil(util: WsBufferUtil): boolean {
  return util.mask.name !== '_mask' && util.unmask.name !== '_unmask' && /bufferUtil/.test(String(util.unmask));
}

/** Loads both copies and checks that exactly one of them uses bufferutil natively. */
export function loadWsCodecs(): WsCodecs {
  const packageJson = require.resolve('ws/package.json');
  const wsDir = dirname(packageJson);
  const version = (require(packageJson) as { version: string }).version;

  const saved = process.env.WS_NO_BUFFER_UTIL;
  let plainCopy: Omit<WsCodec, 'usesBufferUtil'>;
  try {
    dropFromCache(wsDir);
    process.env.WS_NO_BUFFER_UTIL = '1';
    plainCopy = loadCopy(wsDir, 'ws');
  } finally {
    if (saved === undefined) delete process.env.WS_NO_BUFFER_UTIL;
    else process.env.WS_NO_BUFFER_UTIL = saved;
  }
  if (dropFromCache(wsDir) < 3) throw new Error('expected ws modules in the require cache');
  delete process.env.WS_NO_BUFFER_UTIL;
  let nativeCopy: Omit<WsCodec, 'usesBufferUtil'>;
  try {
    nativeCopy = loadCopy(wsDir, 'ws+bufferutil');
  } finally {
    if (saved !== undefined) process.env.WS_NO_BUFFER_UTIL = saved;
  }

  if (plainCopy.Receiver === nativeCopy.Receiver || plainCopy.bufferUtil === nativeCopy.bufferUtil) {
    throw new Error('the two ws copies are the same module instances');
  }
  const plain: WsCodec = { ...plainCopy, usesBufferUtil: detectBufferUtil(plainCopy.bufferUtil) };
  const native: WsCodec = { ...nativeCopy, usesBufferUtil: detectBufferUtil(nativeCopy.bufferUtil) };
  if (plain.usesBufferUtil) throw new Error('the plain ws copy uses bufferutil');
  if (!native.usesBufferUtil) throw new Error('the ws+bufferutil copy does not use bufferutil (is it installed?)');

  const addon = require('bufferutil') as { mask?: unknown };
  if (!isFunction(addon.mask) || !String(addon.mask).includes('[native code]')) {
    throw new Error('bufferutil loaded its JavaScript fallback, not the native addon');
  }
  return { version, plain, native };
}
