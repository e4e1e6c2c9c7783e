/** Every table, so `import * as schema from './schema/index.ts'` gives drizzle and drizzle-kit the whole model. */
export * from './identity.ts';
export * from './auth-servers.ts';
export * from './audit.ts';
export * from './jobs.ts';
export * from './providers.ts';
export * from './pools.ts';
export * from './policies.ts';
export * from './gateways.ts';
export * from './connections.ts';
export * from './saml.ts';
export * from './sso.ts';
