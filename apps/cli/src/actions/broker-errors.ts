import { ConfigError, DataDirInUseError, DomainError, PortInUseError } from '@stagedoor/broker';
import { registerExitCodes } from '../cli-error.ts';

/** Loaded with the commands that run broker code: its typed errors are messages for people, not stacks. */
registerExitCodes((err) => {
  if (err instanceof ConfigError) return 2;
  if (err instanceof DomainError || err instanceof DataDirInUseError || err instanceof PortInUseError) return 1;
  return undefined;
});
