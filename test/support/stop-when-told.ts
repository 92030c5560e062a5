// For the server scripts tests run in processes of their own (hub-server, sdk-server,
// redis-node, limits-server): close once, on SIGTERM or SIGINT or when the parent's stdin
// ends (so a parent that dies without cleaning up leaves nothing behind), then exit with 0,
// or 1 when closing failed.
export function stopWhenTold(close: () => Promise<unknown>): void {
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    close().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
