import { useEffect, type ReactNode } from 'react';
import type { ViewerProps } from './viewer.ts';

/**
 * SSH in the tab (xterm.js over the tunnel's `ssh-terminal` mode, issue 17 point 2): not built yet.
 * It opens no tunnel, so the grant stays unused for the native command.
 */
export function TerminalView(props: ViewerProps): ReactNode {
  const { onFailed } = props;
  useEffect(() => onFailed({ title: 'Not available yet', detail: 'SSH in the browser is not available yet: use the ssh command from your portal.' }), [onFailed]);
  return <div className="viewer" />;
}
