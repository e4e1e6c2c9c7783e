ALTER TABLE "workstations" ADD COLUMN "instance_scope" text;--> statement-breakpoint
ALTER TABLE "workstations" ADD COLUMN "health_source" text;--> statement-breakpoint
-- hand-written (ADR 0018): where a provider's instance ids live. The same rule as instanceScope() in
-- apps/broker/src/domain/providers/overlap.ts: one EC2 endpoint (lower case, no trailing slash; `aws` when
-- none) and region, or a static provider's own namespace.
CREATE FUNCTION "stagedoor_instance_scope"(kind text, endpoint text, region text, provider_id uuid) RETURNS text
  LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN kind = 'aws-ec2' THEN 'ec2 ' || coalesce(rtrim(lower(endpoint), '/'), 'aws') || ' ' || coalesce(region, '')
              ELSE kind || ' ' || provider_id::text END
$$;--> statement-breakpoint
-- hand-written: overlapping providers may already hold one instance twice (issue 16 point 1). The row of
-- the provider created first keeps the instance; the others' rows keep a null scope, are never counted by
-- the cost report, and their provider's next sync skips the instance (naming its owner) and marks the row
-- terminated. Rows still being launched (no instance id yet) get their scope.
UPDATE "workstations" w SET "instance_scope" = s.scope FROM (
  SELECT w2."id", w2."external_id", "stagedoor_instance_scope"(p."kind", p."endpoint", p."region", p."id") AS scope,
         row_number() OVER (PARTITION BY "stagedoor_instance_scope"(p."kind", p."endpoint", p."region", p."id"), w2."external_id"
                            ORDER BY p."created_at", p."id", w2."created_at", w2."id") AS n
  FROM "workstations" w2 JOIN "providers" p ON p."id" = w2."provider_id"
) s WHERE s."id" = w."id" AND (s.n = 1 OR s."external_id" IS NULL);--> statement-breakpoint
CREATE UNIQUE INDEX "workstations_instance_scope_external_key" ON "workstations" USING btree ("instance_scope","external_id");--> statement-breakpoint
-- hand-written: the scope follows the provider row, whoever writes the workstation (any broker version).
CREATE FUNCTION "workstations_set_instance_scope"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  SELECT "stagedoor_instance_scope"(p."kind", p."endpoint", p."region", p."id") INTO NEW."instance_scope" FROM "providers" p WHERE p."id" = NEW."provider_id";
  RETURN NEW;
END
$$;--> statement-breakpoint
CREATE TRIGGER "workstations_instance_scope" BEFORE INSERT OR UPDATE OF "provider_id" ON "workstations"
  FOR EACH ROW EXECUTE FUNCTION "workstations_set_instance_scope"();--> statement-breakpoint
-- hand-written: a provider moved to another endpoint or region takes its machines along; if another provider
-- owns one of them there, the unique index refuses the change (the API answers 409).
CREATE FUNCTION "providers_rescope_workstations"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE "workstations" SET "instance_scope" = "stagedoor_instance_scope"(NEW."kind", NEW."endpoint", NEW."region", NEW."id")
    WHERE "provider_id" = NEW."id" AND "instance_scope" IS NOT NULL;
  RETURN NULL;
END
$$;--> statement-breakpoint
CREATE TRIGGER "providers_rescope" AFTER UPDATE OF "endpoint", "region" ON "providers"
  FOR EACH ROW WHEN (OLD."endpoint" IS DISTINCT FROM NEW."endpoint" OR OLD."region" IS DISTINCT FROM NEW."region")
  EXECUTE FUNCTION "providers_rescope_workstations"();--> statement-breakpoint
-- hand-written: a machine an agent reported healthy was decided by the agent.
UPDATE "workstations" SET "health_source" = 'agent' WHERE "health" <> 'unknown' AND "agent_last_seen_at" IS NOT NULL;--> statement-breakpoint
ALTER TABLE "workstations" ADD CONSTRAINT "workstations_health_source_check" CHECK ("workstations"."health_source" is null or "workstations"."health_source" in ('status-checks', 'agent'));
