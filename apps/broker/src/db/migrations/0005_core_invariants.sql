CREATE TABLE "connect_requests" (
	"user_id" uuid NOT NULL,
	"key" text NOT NULL,
	"request_hash" text NOT NULL,
	"connection_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "connect_requests_pkey" PRIMARY KEY("user_id","key"),
	CONSTRAINT "connect_requests_key_check" CHECK (length("connect_requests"."key") between 1 and 255)
);
--> statement-breakpoint
DROP INDEX "assignments_active_user_idx";--> statement-breakpoint
ALTER TABLE "policies" ADD COLUMN "max_session_minutes" integer;--> statement-breakpoint
ALTER TABLE "assignments" ADD COLUMN "slot" integer DEFAULT 1 NOT NULL;--> statement-breakpoint
-- hand-written: number the active assignments each user holds in a pool 1, 2, … before the unique index.
UPDATE "assignments" a SET "slot" = s.n FROM (SELECT "id", row_number() OVER (PARTITION BY "user_id", "pool_id" ORDER BY "since", "id") AS n FROM "assignments" WHERE "state" = 'active') s WHERE a."id" = s."id";--> statement-breakpoint
ALTER TABLE "connections" ADD COLUMN "via_gateway" boolean DEFAULT false NOT NULL;--> statement-breakpoint
-- hand-written: connections that were ever granted went through a gateway.
UPDATE "connections" c SET "via_gateway" = true WHERE c."gateway_id" IS NOT NULL OR EXISTS (SELECT 1 FROM "grants" g WHERE g."connection_id" = c."id");--> statement-breakpoint
ALTER TABLE "connect_requests" ADD CONSTRAINT "connect_requests_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "connect_requests" ADD CONSTRAINT "connect_requests_connection_id_connections_id_fk" FOREIGN KEY ("connection_id") REFERENCES "public"."connections"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "connect_requests_created_idx" ON "connect_requests" USING btree ("created_at");--> statement-breakpoint
CREATE INDEX "connect_requests_connection_idx" ON "connect_requests" USING btree ("connection_id");--> statement-breakpoint
CREATE UNIQUE INDEX "assignments_active_user_slot_key" ON "assignments" USING btree ("user_id","pool_id","slot") WHERE "assignments"."state" = 'active';--> statement-breakpoint
ALTER TABLE "policies" ADD CONSTRAINT "policies_max_session_minutes_check" CHECK ("policies"."max_session_minutes" is null or "policies"."max_session_minutes" between 1 and 525600);--> statement-breakpoint
ALTER TABLE "assignments" ADD CONSTRAINT "assignments_slot_check" CHECK ("assignments"."slot" >= 1);