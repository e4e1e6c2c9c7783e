ALTER TABLE "workstations" ADD COLUMN "assignment_id" uuid;--> statement-breakpoint
CREATE INDEX "workstations_pool_free_idx" ON "workstations" USING btree ("pool_id") WHERE "workstations"."assignment_id" is null;--> statement-breakpoint
UPDATE "workstations" w SET "assignment_id" = a."id" FROM "assignments" a WHERE a."workstation_id" = w."id" AND a."state" = 'active';
