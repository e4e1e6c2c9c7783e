CREATE TABLE "saml_assertions" (
	"auth_server_id" uuid NOT NULL,
	"assertion_id" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "saml_assertions_pkey" PRIMARY KEY("auth_server_id","assertion_id"),
	CONSTRAINT "saml_assertions_id_check" CHECK (length("saml_assertions"."assertion_id") between 1 and 256)
);
--> statement-breakpoint
ALTER TABLE "saml_assertions" ADD CONSTRAINT "saml_assertions_auth_server_id_auth_servers_id_fk" FOREIGN KEY ("auth_server_id") REFERENCES "public"."auth_servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE INDEX "saml_assertions_expires_idx" ON "saml_assertions" USING btree ("expires_at");