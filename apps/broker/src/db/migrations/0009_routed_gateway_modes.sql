ALTER TABLE "grants" DROP CONSTRAINT "grants_ports_check";--> statement-breakpoint
ALTER TABLE "grants" ALTER COLUMN "gateway_port" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "gateway_enrollments" ADD COLUMN "routed_ports" jsonb;--> statement-breakpoint
ALTER TABLE "gateway_enrollments" ADD COLUMN "sni_domain" text;--> statement-breakpoint
ALTER TABLE "gateways" ADD COLUMN "ssh_host_key" text;--> statement-breakpoint
ALTER TABLE "gateways" ADD COLUMN "tls_certificate_sha256" text;--> statement-breakpoint
ALTER TABLE "gateways" ADD COLUMN "routed_ports" jsonb DEFAULT '{"rdp": 3389, "ssh": 22, "tls": 8443, "tunnel": 443}'::jsonb NOT NULL;--> statement-breakpoint
ALTER TABLE "gateways" ADD COLUMN "sni_domain" text;--> statement-breakpoint
ALTER TABLE "grants" ADD COLUMN "mode" text DEFAULT 'portForward' NOT NULL;--> statement-breakpoint
ALTER TABLE "grants" ADD COLUMN "token_hash" text;--> statement-breakpoint
ALTER TABLE "grants" ADD COLUMN "token_sealed" text;--> statement-breakpoint
ALTER TABLE "grants" ADD COLUMN "reconnect_window_seconds" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "grants" ADD COLUMN "sessions" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
ALTER TABLE "grants" ADD COLUMN "claimed_gateway_id" uuid;--> statement-breakpoint
ALTER TABLE "grants" ADD COLUMN "claimed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "grants" ADD COLUMN "session_ended_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "grants" ADD CONSTRAINT "grants_claimed_gateway_id_gateways_id_fk" FOREIGN KEY ("claimed_gateway_id") REFERENCES "public"."gateways"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "grants_live_token_hash_key" ON "grants" USING btree ("token_hash") WHERE "grants"."state" in ('issued', 'used');--> statement-breakpoint
ALTER TABLE "gateways" ADD CONSTRAINT "gateways_routed_ports_check" CHECK (jsonb_typeof("gateways"."routed_ports") = 'object' and jsonb_typeof("gateways"."routed_ports"->'rdp') = 'number' and ("gateways"."routed_ports"->>'rdp')::numeric between 1 and 65535 and jsonb_typeof("gateways"."routed_ports"->'ssh') = 'number' and ("gateways"."routed_ports"->>'ssh')::numeric between 1 and 65535 and jsonb_typeof("gateways"."routed_ports"->'tls') = 'number' and ("gateways"."routed_ports"->>'tls')::numeric between 1 and 65535 and jsonb_typeof("gateways"."routed_ports"->'tunnel') = 'number' and ("gateways"."routed_ports"->>'tunnel')::numeric between 1 and 65535);--> statement-breakpoint
ALTER TABLE "gateways" ADD CONSTRAINT "gateways_sni_domain_check" CHECK ("gateways"."sni_domain" is null or "gateways"."sni_domain" ~ '^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$');--> statement-breakpoint
ALTER TABLE "grants" ADD CONSTRAINT "grants_mode_check" CHECK ("grants"."mode" in ('portForward', 'routed'));--> statement-breakpoint
ALTER TABLE "grants" ADD CONSTRAINT "grants_mode_binding_check" CHECK (("grants"."mode" = 'portForward' and "grants"."gateway_port" is not null and "grants"."token_hash" is null and "grants"."token_sealed" is null)
        or ("grants"."mode" = 'routed' and "grants"."gateway_port" is null and "grants"."token_hash" is not null and "grants"."token_sealed" is not null));--> statement-breakpoint
ALTER TABLE "grants" ADD CONSTRAINT "grants_token_hash_check" CHECK ("grants"."token_hash" is null or "grants"."token_hash" ~ '^[0-9a-f]{64}$');--> statement-breakpoint
ALTER TABLE "grants" ADD CONSTRAINT "grants_reconnect_check" CHECK ("grants"."reconnect_window_seconds" between 0 and 86400 and "grants"."sessions" >= 0);--> statement-breakpoint
ALTER TABLE "grants" ADD CONSTRAINT "grants_ports_check" CHECK ("grants"."target_port" between 1 and 65535 and ("grants"."gateway_port" is null or "grants"."gateway_port" between 1 and 65535));