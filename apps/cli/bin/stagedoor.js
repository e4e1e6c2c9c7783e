#!/usr/bin/env node
// Stagedoor ships as TypeScript and runs through tsx, so `npm install` is the only build step.
import { register } from 'tsx/esm/api';

register();
const { main } = await import('../src/main.ts');
await main(process.argv);
