-- Widens the allowed price sources with 'aws' (prices fetched from the AWS Price List API). Every row valid
-- before stays valid and an older broker never writes 'aws', so brokers of both versions can run side by side.
ALTER TABLE "price_table" DROP CONSTRAINT "price_table_source_check";--> statement-breakpoint
ALTER TABLE "price_table" ADD CONSTRAINT "price_table_source_check" CHECK ("price_table"."source" in ('default', 'admin', 'aws'));