/**
 * The bench child protocol, shared by every worker in this directory: tell the parent `ready`
 * over IPC, close on `stop` (or SIGTERM, or when the parent is gone) and exit, so a CPU profile
 * (`--cpu-prof`) is written on the way out.
 */

export interface Handle {
  close(): Promise<void>;
}

export function serveUntilStopped(name: string, handle: Handle): void {
  let closing = false;
  const stop = () => {
    if (closing) return;
    closing = true;
    handle.close().then(
      () => process.exit(0),
      (error: Error) => {
        console.error(`${name} close failed: ${error.message}`);
        process.exit(1);
      },
    );
  };
  process.on('message', (message: { type?: string }) => {
    if (message?.type === 'stop') stop();
  });
  process.on('SIGTERM', stop);
  // The bench process died: do not linger as an orphan holding Redis connections.
  process.on('disconnect', stop);
  process.send?.({ type: 'ready' });
}
