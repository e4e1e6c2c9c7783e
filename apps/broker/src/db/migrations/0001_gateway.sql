DROP INDEX "grants_live_gateway_port_key";--> statement-breakpoint
ALTER TABLE "grants" ADD COLUMN "last_reported_at" timestamp with time zone;--> statement-breakpoint
CREATE UNIQUE INDEX "grants_live_cluster_port_key" ON "grants" USING btree ("gateway_cluster","gateway_port") WHERE "grants"."state" in ('issued', 'used');