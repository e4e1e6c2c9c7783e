import { ApiClient, brokerUrl, rememberedUrl } from '../api-client.ts';
import { CliError } from '../cli-error.ts';
import { promptHidden, readStdin } from './prompt.ts';

/**
 * `stagedoor login`: the password from STAGEDOOR_PASSWORD, else asked on the terminal (no echo),
 * else read from standard input (scripts: `… | stagedoor login`). The URL is given once (`--url`
 * or STAGEDOOR_URL) and remembered in config.json.
 */
export async function login(opts: { url?: string; username?: string; sso?: string; browser?: boolean; passwordStdin?: boolean; password?: string }): Promise<void> {
  const raw = opts.url || rememberedUrl();
  if (!raw) throw new CliError('which broker? give its URL once: stagedoor login --url https://broker.example --username NAME (or set STAGEDOOR_URL)');
  const url = brokerUrl(raw);
  if (opts.sso) {
    if (opts.username) throw new CliError('--sso and --username do not go together: the identity provider says who you are');
    const { ssoLogin } = await import('./sso-login.ts');
    const s = await ssoLogin(url, opts.sso, { openBrowser: opts.browser !== false });
    console.log(`signed in to ${s.url} as ${s.username}`);
    return;
  }
  if (!opts.username) throw new CliError('give --username NAME (password sign-in) or --sso NAME (single sign-on)');
  let password = opts.password;
  if (!password) {
    password = opts.passwordStdin || !process.stdin.isTTY ? await readStdin() : await promptHidden(`Password for ${opts.username} at ${url}: `);
  }
  if (!password) throw new CliError('no password given (type it when asked, pipe it in, or set STAGEDOOR_PASSWORD)');
  const s = await ApiClient.login(url, opts.username, password);
  console.log(`signed in to ${s.url} as ${s.username}`);
}

/** `stagedoor logout`: end the session on the broker and delete the file. */
export async function logout(): Promise<void> {
  const ended = await ApiClient.logout();
  console.log(ended ? `signed out of ${ended.url} (${ended.username})` : 'not signed in');
}
