/**
 * A commander action whose implementation is imported only when its command runs: `stagedoor
 * --version`, `--help` and the artist's commands never load the broker, the gateway or the EC2
 * emulator (every command used to load the whole broker, ~3 s of CPU before doing anything).
 */
export function lazy<M, K extends keyof M>(load: () => Promise<M>, name: K): (...args: unknown[]) => Promise<void> {
  return async (...args: unknown[]) => {
    const fn = (await load())[name] as (...a: unknown[]) => Promise<void> | void;
    await fn(...args);
  };
}
