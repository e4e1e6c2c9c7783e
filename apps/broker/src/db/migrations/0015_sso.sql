CREATE TABLE "sso_identities" (
	"auth_server_id" uuid NOT NULL,
	"subject" text NOT NULL,
	"user_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "sso_identities_pkey" PRIMARY KEY("auth_server_id","subject"),
	CONSTRAINT "sso_identities_subject_check" CHECK (length("sso_identities"."subject") between 1 and 1024)
);
--> statement-breakpoint
CREATE TABLE "sso_states" (
	"key_hash" text PRIMARY KEY NOT NULL,
	"purpose" text NOT NULL,
	"auth_server_id" uuid NOT NULL,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "sso_states_purpose_check" CHECK ("sso_states"."purpose" in ('oidc-login', 'saml-request', 'cli-handoff')),
	CONSTRAINT "sso_states_payload_check" CHECK (jsonb_typeof("sso_states"."payload") = 'object')
);
--> statement-breakpoint
ALTER TABLE "auth_servers" DROP CONSTRAINT "auth_servers_kind_check";--> statement-breakpoint
ALTER TABLE "auth_servers" DROP CONSTRAINT "auth_servers_kind_purpose_check";--> statement-breakpoint
ALTER TABLE "sso_identities" ADD CONSTRAINT "sso_identities_auth_server_id_auth_servers_id_fk" FOREIGN KEY ("auth_server_id") REFERENCES "public"."auth_servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sso_identities" ADD CONSTRAINT "sso_identities_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sso_states" ADD CONSTRAINT "sso_states_auth_server_id_auth_servers_id_fk" FOREIGN KEY ("auth_server_id") REFERENCES "public"."auth_servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "sso_identities_server_user_key" ON "sso_identities" USING btree ("auth_server_id","user_id");--> statement-breakpoint
CREATE INDEX "sso_identities_user_idx" ON "sso_identities" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "sso_states_expires_idx" ON "sso_states" USING btree ("expires_at");--> statement-breakpoint
ALTER TABLE "auth_servers" ADD CONSTRAINT "auth_servers_kind_check" CHECK ("auth_servers"."kind" in ('local', 'ldap', 'radius', 'totp', 'oidc', 'saml'));--> statement-breakpoint
ALTER TABLE "auth_servers" ADD CONSTRAINT "auth_servers_kind_purpose_check" CHECK (("auth_servers"."kind" in ('local', 'ldap', 'oidc', 'saml') and "auth_servers"."purpose" = 'primary')
        or ("auth_servers"."kind" = 'totp' and "auth_servers"."purpose" = 'second-factor')
        or "auth_servers"."kind" = 'radius');