#!/usr/bin/env node
// A relay worker of `stagedoor gateway` (STAGEDOOR_GATEWAY_WORKERS > 1), forked by the gateway process.
import { register } from 'tsx/esm/api';

register();
await import('../src/worker-main.ts');
