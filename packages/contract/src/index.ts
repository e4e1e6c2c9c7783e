export * from './roles.ts';
export * from './common.ts';
export * from './identity.ts';
export * from './audit.ts';
export * from './system.ts';
