import { Backend } from '@devolutions/iron-remote-desktop-rdp';

type RdpClipboardData = InstanceType<typeof Backend.ClipboardData>;
type RdpSession = Awaited<ReturnType<InstanceType<typeof Backend.SessionBuilder>['connect']>>;

export interface RdpClipboard {
  /** The backend to give the component (`el.module`): IronRDP's own, with the clipboard tapped. */
  backend: typeof Backend;
  /** Put text on the desktop's clipboard through the RDP clipboard channel (cliprdr). */
  send: (text: string) => Promise<void>;
}

/**
 * The toolbar's clipboard panel for RDP (ADR 0030). IronRDP's web component keeps the desktop's
 * clipboard in step with the *browser's* clipboard only (navigator.clipboard, its 100 ms polling
 * loop), and its public API never hands the text to the page: `saveRemoteClipboardData` writes it
 * to the browser's clipboard and `sendClipboardData` reads it from there, both behind the
 * browser's clipboard-read permission, which a user may refuse and a headless browser never
 * grants. So the panel would stay empty and "Send to desktop" would do nothing.
 *
 * The component builds its session with the backend we give it. This backend's SessionBuilder
 * passes every "the desktop's clipboard changed" callback through us first (we read the text
 * items, then the component does what it always does), and keeps the session it connects so that
 * "Send to desktop" can hand text to the session's own cliprdr (`onClipboardPaste`, what the
 * component calls after reading the browser's clipboard). When the browser offers no clipboard API
 * the component registers no callback at all; we register ours, so the panel still works.
 */
export function rdpClipboard(onRemoteText: (text: string) => void): RdpClipboard {
  let session: RdpSession | null = null;
  const report = (data: RdpClipboardData) => {
    // Read before passing on: the data lives in the WebAssembly heap for this call.
    for (const item of data.items()) {
      const value: unknown = item.value();
      if (item.mimeType().startsWith('text/plain') && typeof value === 'string' && value !== '') return onRemoteText(value);
    }
  };
  class TappedSessionBuilder extends Backend.SessionBuilder {
    private tapped = false;
    override remoteClipboardChangedCallback(callback: (data: RdpClipboardData) => void) {
      this.tapped = true;
      return super.remoteClipboardChangedCallback((data: RdpClipboardData) => {
        report(data);
        callback(data);
      });
    }
    override async connect() {
      if (!this.tapped) super.remoteClipboardChangedCallback(report);
      session = await super.connect();
      return session;
    }
  }
  return {
    backend: { ...Backend, SessionBuilder: TappedSessionBuilder },
    send: async (text) => {
      if (!session) throw new Error('the RDP session is not running');
      const data = new Backend.ClipboardData();
      data.addText('text/plain', text);
      await session.onClipboardPaste(data);
    },
  };
}
