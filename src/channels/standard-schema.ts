// The Standard Schema types live in wire/, shared with the SDK; the channels layer re-exports them.
export * from '../wire/standard-schema.js';
