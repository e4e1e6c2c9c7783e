import { defineConfig } from 'drizzle-kit';

export default defineConfig({
  dialect: 'postgresql',
  schema: './apps/broker/src/db/schema/index.ts',
  out: './apps/broker/src/db/migrations',
});
