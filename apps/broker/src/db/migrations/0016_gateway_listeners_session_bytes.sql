ALTER TABLE "gateways" ADD COLUMN "routed_ports_set" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "gateways" ADD COLUMN "listener_ports" jsonb;--> statement-breakpoint
ALTER TABLE "grants" ADD COLUMN "ended_bytes_up" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "grants" ADD COLUMN "ended_bytes_down" bigint DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "grants" ADD COLUMN "bytes_session" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "gateways" ADD CONSTRAINT "gateways_listener_ports_check" CHECK ("gateways"."listener_ports" is null or jsonb_typeof("gateways"."listener_ports") = 'object');--> statement-breakpoint
ALTER TABLE "grants" ADD CONSTRAINT "grants_ended_bytes_check" CHECK ("grants"."ended_bytes_up" >= 0 and "grants"."ended_bytes_down" >= 0 and "grants"."bytes_session" >= 0);--> statement-breakpoint
-- Gateways whose ports an admin changed from the defaults keep them as what clients dial.
UPDATE "gateways" SET "routed_ports_set" = true WHERE "routed_ports" <> '{"rdp": 3389, "ssh": 22, "tls": 8443, "tunnel": 443}'::jsonb;
