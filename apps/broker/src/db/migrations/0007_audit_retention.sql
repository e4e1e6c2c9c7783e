CREATE TABLE "audit_refusal_counts" (
	"source_key" text NOT NULL,
	"minute" timestamp with time zone NOT NULL,
	"written" integer DEFAULT 0 NOT NULL,
	"suppressed" integer DEFAULT 0 NOT NULL,
	"suppressed_actions" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"last_written" boolean DEFAULT true NOT NULL,
	CONSTRAINT "audit_refusal_counts_pkey" PRIMARY KEY("source_key","minute"),
	CONSTRAINT "audit_refusal_counts_counts_check" CHECK ("audit_refusal_counts"."written" >= 0 and "audit_refusal_counts"."suppressed" >= 0)
);
--> statement-breakpoint
CREATE INDEX "audit_refusal_counts_minute_idx" ON "audit_refusal_counts" USING btree ("minute");