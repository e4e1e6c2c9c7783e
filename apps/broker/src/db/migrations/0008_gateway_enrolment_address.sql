ALTER TABLE "gateway_enrollments" ADD COLUMN "purpose" text DEFAULT 'new' NOT NULL;--> statement-breakpoint
ALTER TABLE "gateway_enrollments" ADD COLUMN "public_address" text;--> statement-breakpoint
ALTER TABLE "gateways" ADD COLUMN "previous_public_address" text;--> statement-breakpoint
ALTER TABLE "gateways" ADD COLUMN "public_address_changed_at" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "gateway_enrollments" ADD CONSTRAINT "gateway_enrollments_purpose_check" CHECK ("gateway_enrollments"."purpose" in ('new', 'reenroll'));