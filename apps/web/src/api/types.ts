import type { z } from 'zod';
import type * as C from '@stagedoor/contract';

/** The API's shapes, inferred from the contract's schemas (types only: no zod in the bundle). */
export type User = z.infer<typeof C.User>;
export type Role = User['role'];
export type Me = z.infer<typeof C.Me>;
export type ApiToken = z.infer<typeof C.ApiToken>;
export type LoginAnswer = z.infer<typeof C.LoginAnswer>;
export type MfaLoginAnswer = z.infer<typeof C.MfaLoginAnswer>;
export type SsoServerList = z.infer<typeof C.SsoServerList>;
export type Desktops = z.infer<typeof C.Desktops>;
export type Desktop = z.infer<typeof C.Desktop>;
export type Connection = z.infer<typeof C.Connection>;
export type Pool = z.infer<typeof C.Pool>;
export type PoolForecast = z.infer<typeof C.PoolForecast>;
export type Policy = z.infer<typeof C.Policy>;
export type Group = z.infer<typeof C.Group>;
export type Gateway = z.infer<typeof C.Gateway>;
export type Workstation = z.infer<typeof C.Workstation>;
export type AuditEvent = z.infer<typeof C.AuditEvent>;
export type LiveSession = z.infer<typeof C.LiveSession>;
export type DashboardEvent = z.infer<typeof C.DashboardEvent>;
export type ErrorBody = C.ErrorBody;
export type CostReport = z.infer<typeof C.CostReport>;

export interface Page<T> {
  items: T[];
  total: number;
  limit: number;
  offset: number;
}
