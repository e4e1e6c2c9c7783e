/**
 * xterm.js writes its layout and colours into `<style>` elements it creates (its DOM renderer), which
 * the console's CSP (`style-src 'self'`, no 'unsafe-inline') refuses: the terminal would render
 * without cell sizes or colours, and every refusal is a console error. Rather than loosen the policy
 * for the session tab, `document.createElement('style')` made inside `run` hands out an inert
 * `<template>` (not rendered, not a style block, so CSP has nothing to refuse) and whatever text
 * xterm puts in it is mirrored into a constructed stylesheet adopted by the document — CSSOM, which
 * the policy governs no more than `element.style`. ADR 0029.
 */
export function withAdoptedStyles<T>(run: () => T): { result: T; dispose: () => void } {
  const sheets = new Map<Element, CSSStyleSheet>();
  const sync = (el: Element) => {
    let sheet = sheets.get(el);
    if (!sheet) {
      sheet = new CSSStyleSheet();
      sheets.set(el, sheet);
      document.adoptedStyleSheets = [...document.adoptedStyleSheets, sheet];
    }
    sheet.replaceSync(el.textContent ?? '');
  };
  const observer = new MutationObserver((records) => {
    const seen = new Set<Element>();
    for (const r of records) {
      const node = r.target.nodeType === Node.ELEMENT_NODE ? (r.target as Element) : r.target.parentElement;
      const el = node?.closest('template[data-xterm-style]');
      if (el && !seen.has(el)) {
        seen.add(el);
        sync(el);
      }
    }
  });
  const original = Document.prototype.createElement;
  const patched = function (this: Document, tag: string, options?: ElementCreationOptions): HTMLElement {
    if (tag.toLowerCase() !== 'style') return original.call(this, tag, options);
    const el = original.call(this, 'template');
    el.dataset.xtermStyle = '';
    observer.observe(el, { childList: true, characterData: true, subtree: true });
    return el;
  } as typeof Document.prototype.createElement;
  Document.prototype.createElement = patched;
  let result: T;
  try {
    result = run();
  } finally {
    Document.prototype.createElement = original;
  }
  return {
    result,
    dispose: () => {
      observer.disconnect();
      const gone = new Set(sheets.values());
      document.adoptedStyleSheets = document.adoptedStyleSheets.filter((s) => !gone.has(s));
      sheets.clear();
    },
  };
}
