import { useEffect, type ReactNode } from 'react';
import type { ViewerProps } from './viewer.ts';

/**
 * RDP in the tab (IronRDP over the tunnel's `rdcleanpath` mode, issue 17 point 3): not built yet.
 * It opens no tunnel, so the grant stays unused for the .rdp file.
 */
export function RdpView(props: ViewerProps): ReactNode {
  const { onFailed } = props;
  useEffect(() => onFailed({ title: 'Not available yet', detail: 'RDP in the browser is not available yet: use the .rdp file from your portal.' }), [onFailed]);
  return <div className="viewer" />;
}
