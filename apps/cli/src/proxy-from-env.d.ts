// proxy-from-env 2.x ships JavaScript only; its one export, as its README documents it.
declare module 'proxy-from-env' {
  /** The proxy URL for `url` from *_PROXY / ALL_PROXY, or '' when none applies (NO_PROXY included). */
  export function getProxyForUrl(url: string | URL): string;
}
