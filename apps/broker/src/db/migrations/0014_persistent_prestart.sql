ALTER TABLE "policies" ADD COLUMN "prestart_persistent" boolean DEFAULT false NOT NULL;--> statement-breakpoint
ALTER TABLE "assignments" ADD COLUMN "prestarted_at" timestamp with time zone;