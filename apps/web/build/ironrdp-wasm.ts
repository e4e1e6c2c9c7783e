import type { Plugin } from 'vite';

const INLINE_WASM = /"data:application\/wasm;base64,([A-Za-z0-9+/=]+)"/;

/**
 * IronRDP's RDP backend ships its WebAssembly inlined as a `data:` URL, which it `fetch`es at start:
 * under the broker's CSP that needs `connect-src data:`. At build time this moves the module to an
 * asset file of its own (served from 'self', as application/wasm) and points the package at it, so
 * the session page needs only `'wasm-unsafe-eval'` (ADR 0030). The JavaScript also shrinks by the
 * base64's third.
 */
export function ironRdpWasmAsset(): Plugin {
  return {
    name: 'stagedoor-ironrdp-wasm-asset',
    apply: 'build',
    transform(code, id) {
      if (!id.includes('iron-remote-desktop-rdp')) return null;
      const m = INLINE_WASM.exec(code);
      if (!m) return null;
      const ref = this.emitFile({ type: 'asset', name: 'ironrdp.wasm', source: Buffer.from(m[1]!, 'base64') });
      return { code: code.replace(m[0], `import.meta.ROLLUP_FILE_URL_${ref}`), map: null };
    },
  };
}
