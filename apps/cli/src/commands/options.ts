import { Option } from 'commander';

export const urlOption = () => new Option('--url <url>', 'broker URL (default: the one `stagedoor login` remembered)').env('STAGEDOOR_URL');
export const tokenOption = () => new Option('--token <token>', 'API token (instead of `stagedoor login`)').env('STAGEDOOR_TOKEN');
