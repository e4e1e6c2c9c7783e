ALTER TABLE "workstations" ADD COLUMN "agent_idle_seconds" integer;--> statement-breakpoint
ALTER TABLE "workstations" ADD COLUMN "agent_notice" jsonb;--> statement-breakpoint
CREATE INDEX "timers_pending_workstation_idx" ON "timers" USING btree (("payload" ->> 'workstationId')) WHERE "timers"."state" = 'pending';--> statement-breakpoint
ALTER TABLE "workstations" ADD CONSTRAINT "workstations_agent_notice_check" CHECK ("workstations"."agent_notice" is null or jsonb_typeof("workstations"."agent_notice") = 'object');--> statement-breakpoint
ALTER TABLE "workstations" ADD CONSTRAINT "workstations_agent_idle_seconds_check" CHECK ("workstations"."agent_idle_seconds" is null or "workstations"."agent_idle_seconds" >= 0);