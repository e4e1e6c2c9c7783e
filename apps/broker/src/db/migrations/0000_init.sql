CREATE TABLE "api_tokens" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"name" text NOT NULL,
	"token_hash" text NOT NULL,
	"prefix" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_used_at" timestamp with time zone,
	"expires_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "api_tokens_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
CREATE TABLE "group_members" (
	"group_id" uuid NOT NULL,
	"user_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "group_members_group_id_user_id_pk" PRIMARY KEY("group_id","user_id")
);
--> statement-breakpoint
CREATE TABLE "groups" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"source" text DEFAULT 'local' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "sessions" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"token_hash" text NOT NULL,
	"csrf_token" text NOT NULL,
	"user_id" uuid NOT NULL,
	"source_address" "inet",
	"user_agent" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_seen_at" timestamp with time zone DEFAULT now() NOT NULL,
	"idle_expires_at" timestamp with time zone NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	"revoked_at" timestamp with time zone,
	CONSTRAINT "sessions_token_hash_unique" UNIQUE("token_hash")
);
--> statement-breakpoint
CREATE TABLE "users" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"username" text NOT NULL,
	"display_name" text,
	"email" text,
	"role" text DEFAULT 'user' NOT NULL,
	"password_hash" text,
	"auth_server_id" uuid,
	"disabled" boolean DEFAULT false NOT NULL,
	"last_login_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "users_role_check" CHECK ("users"."role" in ('admin', 'operator', 'auditor', 'user')),
	CONSTRAINT "users_username_check" CHECK (length("users"."username") between 1 and 256)
);
--> statement-breakpoint
CREATE TABLE "auth_server_group_mappings" (
	"auth_server_id" uuid NOT NULL,
	"external_group" text NOT NULL,
	"group_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "auth_server_group_mappings_pkey" PRIMARY KEY("auth_server_id","external_group","group_id"),
	CONSTRAINT "auth_server_group_mappings_external_lower_check" CHECK ("auth_server_group_mappings"."external_group" = lower("auth_server_group_mappings"."external_group"))
);
--> statement-breakpoint
CREATE TABLE "auth_servers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"purpose" text DEFAULT 'primary' NOT NULL,
	"position" integer NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"config" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"secret_ciphertext" text,
	"mfa_server_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "auth_servers_position_key" UNIQUE("position"),
	CONSTRAINT "auth_servers_name_check" CHECK (length("auth_servers"."name") between 1 and 128),
	CONSTRAINT "auth_servers_kind_check" CHECK ("auth_servers"."kind" in ('local', 'ldap', 'radius', 'totp')),
	CONSTRAINT "auth_servers_purpose_check" CHECK ("auth_servers"."purpose" in ('primary', 'second-factor')),
	CONSTRAINT "auth_servers_kind_purpose_check" CHECK (("auth_servers"."kind" in ('local', 'ldap') and "auth_servers"."purpose" = 'primary')
        or ("auth_servers"."kind" = 'totp' and "auth_servers"."purpose" = 'second-factor')
        or "auth_servers"."kind" = 'radius'),
	CONSTRAINT "auth_servers_mfa_self_check" CHECK ("auth_servers"."mfa_server_id" is null or "auth_servers"."mfa_server_id" <> "auth_servers"."id"),
	CONSTRAINT "auth_servers_config_check" CHECK (jsonb_typeof("auth_servers"."config") = 'object')
);
--> statement-breakpoint
CREATE TABLE "group_mfa_requirements" (
	"group_id" uuid PRIMARY KEY NOT NULL,
	"mfa_server_id" uuid NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE TABLE "login_throttles" (
	"scope" text NOT NULL,
	"key" text NOT NULL,
	"failure_count" integer DEFAULT 0 NOT NULL,
	"window_started_at" timestamp with time zone DEFAULT now() NOT NULL,
	"last_failure_at" timestamp with time zone,
	"locked_until" timestamp with time zone,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "login_throttles_pkey" PRIMARY KEY("scope","key"),
	CONSTRAINT "login_throttles_scope_check" CHECK ("login_throttles"."scope" in ('account', 'address')),
	CONSTRAINT "login_throttles_failure_count_check" CHECK ("login_throttles"."failure_count" >= 0)
);
--> statement-breakpoint
CREATE TABLE "pending_logins" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"token_hash" text NOT NULL,
	"user_id" uuid NOT NULL,
	"factor" text NOT NULL,
	"mfa_server_id" uuid,
	"password_server_id" uuid,
	"radius_state" text,
	"radius_server" text,
	"attempts" integer DEFAULT 0 NOT NULL,
	"source_address" "inet",
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"expires_at" timestamp with time zone NOT NULL,
	CONSTRAINT "pending_logins_token_hash_key" UNIQUE("token_hash"),
	CONSTRAINT "pending_logins_factor_check" CHECK ("pending_logins"."factor" in ('totp', 'totp-enroll', 'radius')),
	CONSTRAINT "pending_logins_attempts_check" CHECK ("pending_logins"."attempts" >= 0),
	CONSTRAINT "pending_logins_radius_check" CHECK ("pending_logins"."radius_state" is null or "pending_logins"."factor" = 'radius')
);
--> statement-breakpoint
CREATE TABLE "totp_recovery_codes" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid NOT NULL,
	"code_hash" text NOT NULL,
	"used_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "totp_recovery_codes_user_hash_key" UNIQUE("user_id","code_hash")
);
--> statement-breakpoint
CREATE TABLE "user_totp" (
	"user_id" uuid PRIMARY KEY NOT NULL,
	"secret_ciphertext" text NOT NULL,
	"algorithm" text DEFAULT 'SHA1' NOT NULL,
	"digits" integer DEFAULT 6 NOT NULL,
	"period_seconds" integer DEFAULT 30 NOT NULL,
	"confirmed_at" timestamp with time zone,
	"last_used_step" integer,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "user_totp_algorithm_check" CHECK ("user_totp"."algorithm" in ('SHA1', 'SHA256', 'SHA512')),
	CONSTRAINT "user_totp_digits_check" CHECK ("user_totp"."digits" between 6 and 8),
	CONSTRAINT "user_totp_period_check" CHECK ("user_totp"."period_seconds" between 15 and 120),
	CONSTRAINT "user_totp_step_check" CHECK ("user_totp"."last_used_step" is null or "user_totp"."last_used_step" >= 0)
);
--> statement-breakpoint
CREATE TABLE "audit_events" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"actor_user_id" uuid,
	"actor_name" text,
	"source_address" "inet",
	"action" text NOT NULL,
	"target_type" text,
	"target_id" text,
	"outcome" text NOT NULL,
	"reason" text,
	"details" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"request_id" text,
	CONSTRAINT "audit_events_outcome_check" CHECK ("audit_events"."outcome" in ('success', 'failure', 'denied'))
);
--> statement-breakpoint
CREATE TABLE "timers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"kind" text NOT NULL,
	"key" text NOT NULL,
	"payload" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"due_at" timestamp with time zone NOT NULL,
	"state" text DEFAULT 'pending' NOT NULL,
	"attempts" integer DEFAULT 0 NOT NULL,
	"max_attempts" integer DEFAULT 8 NOT NULL,
	"lease_until" timestamp with time zone,
	"leased_by" text,
	"last_error" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	CONSTRAINT "timers_state_check" CHECK ("timers"."state" in ('pending', 'done', 'failed', 'cancelled')),
	CONSTRAINT "timers_attempts_check" CHECK ("timers"."attempts" >= 0 and "timers"."max_attempts" >= 1)
);
--> statement-breakpoint
CREATE TABLE "price_table" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"instance_type" text NOT NULL,
	"region" text NOT NULL,
	"hourly_price" numeric(12, 6) NOT NULL,
	"currency" text DEFAULT 'USD' NOT NULL,
	"source" text DEFAULT 'admin' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "price_table_type_region_key" UNIQUE("instance_type","region"),
	CONSTRAINT "price_table_price_check" CHECK ("price_table"."hourly_price" >= 0),
	CONSTRAINT "price_table_currency_check" CHECK ("price_table"."currency" ~ '^[A-Z]{3}$'),
	CONSTRAINT "price_table_source_check" CHECK ("price_table"."source" in ('default', 'admin'))
);
--> statement-breakpoint
CREATE TABLE "providers" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"kind" text NOT NULL,
	"region" text,
	"endpoint" text,
	"credentials_mode" text DEFAULT 'default-chain' NOT NULL,
	"access_key_id" text,
	"secret_ciphertext" text,
	"tag_filter" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"sync_interval_seconds" integer DEFAULT 300 NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"last_sync_at" timestamp with time zone,
	"last_sync_status" text,
	"last_sync_message" text,
	"last_sync_counts" jsonb,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "providers_name_check" CHECK (length("providers"."name") between 1 and 128),
	CONSTRAINT "providers_kind_check" CHECK ("providers"."kind" in ('aws-ec2', 'static')),
	CONSTRAINT "providers_credentials_mode_check" CHECK ("providers"."credentials_mode" in ('access-key', 'default-chain', 'none')),
	CONSTRAINT "providers_last_sync_status_check" CHECK ("providers"."last_sync_status" in ('ok', 'error')),
	CONSTRAINT "providers_kind_settings_check" CHECK (("providers"."kind" = 'static' and "providers"."credentials_mode" = 'none')
        or ("providers"."kind" = 'aws-ec2' and "providers"."region" is not null and "providers"."credentials_mode" <> 'none')),
	CONSTRAINT "providers_access_key_check" CHECK (("providers"."credentials_mode" = 'access-key' and "providers"."access_key_id" is not null and "providers"."secret_ciphertext" is not null)
        or ("providers"."credentials_mode" <> 'access-key' and "providers"."access_key_id" is null and "providers"."secret_ciphertext" is null)),
	CONSTRAINT "providers_sync_interval_check" CHECK ("providers"."sync_interval_seconds" between 10 and 86400),
	CONSTRAINT "providers_tag_filter_check" CHECK (jsonb_typeof("providers"."tag_filter") = 'object')
);
--> statement-breakpoint
CREATE TABLE "workstation_power_history" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"workstation_id" uuid NOT NULL,
	"state" text NOT NULL,
	"instance_type" text,
	"pool_id" uuid,
	"from_at" timestamp with time zone NOT NULL,
	"to_at" timestamp with time zone,
	CONSTRAINT "workstation_power_history_state_check" CHECK ("workstation_power_history"."state" in ('pending', 'running', 'stopping', 'stopped', 'terminated', 'unknown')),
	CONSTRAINT "workstation_power_history_interval_check" CHECK ("workstation_power_history"."to_at" is null or "workstation_power_history"."to_at" >= "workstation_power_history"."from_at")
);
--> statement-breakpoint
CREATE TABLE "workstations" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"provider_id" uuid NOT NULL,
	"external_id" text,
	"name" text NOT NULL,
	"private_address" "inet",
	"instance_type" text,
	"availability_zone" text,
	"subnet_id" text,
	"image_id" text,
	"tags" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"power_state" text DEFAULT 'unknown' NOT NULL,
	"power_state_changed_at" timestamp with time zone DEFAULT now() NOT NULL,
	"health" text DEFAULT 'unknown' NOT NULL,
	"health_checked_at" timestamp with time zone,
	"protocols" jsonb,
	"pool_id" uuid,
	"launched_by_pool_id" uuid,
	"launch_token" text,
	"launched_at" timestamp with time zone,
	"maintenance" boolean DEFAULT false NOT NULL,
	"agent_token_hash" text,
	"agent_version" text,
	"agent_last_seen_at" timestamp with time zone,
	"agent_session_state" text DEFAULT 'unknown' NOT NULL,
	"agent_session_user" text,
	"last_activity_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "workstations_provider_external_key" UNIQUE("provider_id","external_id"),
	CONSTRAINT "workstations_provider_launch_token_key" UNIQUE("provider_id","launch_token"),
	CONSTRAINT "workstations_agent_token_hash_key" UNIQUE("agent_token_hash"),
	CONSTRAINT "workstations_identity_check" CHECK ("workstations"."external_id" is not null or "workstations"."launch_token" is not null),
	CONSTRAINT "workstations_power_state_check" CHECK ("workstations"."power_state" in ('pending', 'running', 'stopping', 'stopped', 'terminated', 'unknown')),
	CONSTRAINT "workstations_health_check" CHECK ("workstations"."health" in ('unknown', 'healthy', 'unhealthy')),
	CONSTRAINT "workstations_agent_session_state_check" CHECK ("workstations"."agent_session_state" in ('unknown', 'none', 'active', 'locked', 'idle', 'disconnected')),
	CONSTRAINT "workstations_tags_check" CHECK (jsonb_typeof("workstations"."tags") = 'object'),
	CONSTRAINT "workstations_protocols_check" CHECK ("workstations"."protocols" is null or jsonb_typeof("workstations"."protocols") = 'array')
);
--> statement-breakpoint
CREATE TABLE "pools" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"provider_id" uuid NOT NULL,
	"membership" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"template" jsonb,
	"name_sequence" integer DEFAULT 0 NOT NULL,
	"min_available" integer DEFAULT 0 NOT NULL,
	"max_total" integer,
	"max_available" integer,
	"schedule_windows" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"time_zone" text DEFAULT 'UTC' NOT NULL,
	"launch_rate_per_minute" integer DEFAULT 10 NOT NULL,
	"provisioning" text DEFAULT 'running' NOT NULL,
	"gateway_cluster" text,
	"last_reconcile_at" timestamp with time zone,
	"last_reconcile_outcome" text,
	"last_reconcile_error" text,
	"last_reconcile_summary" jsonb,
	"backoff_until" timestamp with time zone,
	"consecutive_failures" integer DEFAULT 0 NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "pools_name_check" CHECK (length("pools"."name") between 1 and 128),
	CONSTRAINT "pools_provisioning_check" CHECK ("pools"."provisioning" in ('running', 'paused')),
	CONSTRAINT "pools_last_reconcile_outcome_check" CHECK ("pools"."last_reconcile_outcome" in ('ok', 'partial', 'error')),
	CONSTRAINT "pools_name_sequence_check" CHECK ("pools"."name_sequence" >= 0),
	CONSTRAINT "pools_thresholds_check" CHECK ("pools"."min_available" >= 0
        and ("pools"."max_total" is null or "pools"."max_total" >= 0)
        and ("pools"."max_available" is null or "pools"."max_available" >= 0)
        and ("pools"."max_available" is null or "pools"."min_available" <= "pools"."max_available")
        and ("pools"."max_total" is null or "pools"."min_available" <= "pools"."max_total")
        and ("pools"."max_total" is null or "pools"."max_available" is null or "pools"."max_available" <= "pools"."max_total")),
	CONSTRAINT "pools_launch_rate_check" CHECK ("pools"."launch_rate_per_minute" between 1 and 10000),
	CONSTRAINT "pools_consecutive_failures_check" CHECK ("pools"."consecutive_failures" >= 0),
	CONSTRAINT "pools_membership_check" CHECK (jsonb_typeof("pools"."membership") = 'object'),
	CONSTRAINT "pools_template_check" CHECK ("pools"."template" is null or jsonb_typeof("pools"."template") = 'object'),
	CONSTRAINT "pools_schedule_windows_check" CHECK (jsonb_typeof("pools"."schedule_windows") = 'array')
);
--> statement-breakpoint
CREATE TABLE "policies" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"position" integer NOT NULL,
	"enabled" boolean DEFAULT true NOT NULL,
	"assignment_mode" text DEFAULT 'floating' NOT NULL,
	"start_stopped_on_login" boolean DEFAULT true NOT NULL,
	"launch_on_login" boolean DEFAULT false NOT NULL,
	"allow_restart" boolean DEFAULT false NOT NULL,
	"protocol_plan_id" uuid,
	"power_plan_id" uuid,
	"release_plan_id" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "policies_position_key" UNIQUE("position"),
	CONSTRAINT "policies_name_check" CHECK (length("policies"."name") between 1 and 128),
	CONSTRAINT "policies_assignment_mode_check" CHECK ("policies"."assignment_mode" in ('floating', 'persistent'))
);
--> statement-breakpoint
CREATE TABLE "policy_groups" (
	"policy_id" uuid NOT NULL,
	"group_id" uuid NOT NULL,
	CONSTRAINT "policy_groups_pkey" PRIMARY KEY("policy_id","group_id")
);
--> statement-breakpoint
CREATE TABLE "policy_pools" (
	"policy_id" uuid NOT NULL,
	"pool_id" uuid NOT NULL,
	"desktop_count" integer DEFAULT 1 NOT NULL,
	"position" integer NOT NULL,
	CONSTRAINT "policy_pools_pkey" PRIMARY KEY("policy_id","pool_id"),
	CONSTRAINT "policy_pools_position_key" UNIQUE("policy_id","position"),
	CONSTRAINT "policy_pools_desktop_count_check" CHECK ("policy_pools"."desktop_count" >= 1)
);
--> statement-breakpoint
CREATE TABLE "power_plans" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"on_disconnect_action" text DEFAULT 'none' NOT NULL,
	"on_disconnect_delay_seconds" integer DEFAULT -1 NOT NULL,
	"on_logout_action" text DEFAULT 'none' NOT NULL,
	"on_logout_delay_seconds" integer DEFAULT -1 NOT NULL,
	"on_idle_action" text DEFAULT 'none' NOT NULL,
	"on_idle_delay_seconds" integer DEFAULT -1 NOT NULL,
	"schedule_rules" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"time_zone" text DEFAULT 'UTC' NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "power_plans_name_check" CHECK (length("power_plans"."name") between 1 and 128),
	CONSTRAINT "power_plans_on_disconnect_action_check" CHECK ("power_plans"."on_disconnect_action" in ('none', 'stop', 'hibernate', 'terminate', 'restart')),
	CONSTRAINT "power_plans_on_logout_action_check" CHECK ("power_plans"."on_logout_action" in ('none', 'stop', 'hibernate', 'terminate', 'restart')),
	CONSTRAINT "power_plans_on_idle_action_check" CHECK ("power_plans"."on_idle_action" in ('none', 'stop', 'hibernate', 'terminate', 'restart')),
	CONSTRAINT "power_plans_delays_check" CHECK ("power_plans"."on_disconnect_delay_seconds" >= -1 and "power_plans"."on_logout_delay_seconds" >= -1 and "power_plans"."on_idle_delay_seconds" >= -1),
	CONSTRAINT "power_plans_schedule_rules_check" CHECK (jsonb_typeof("power_plans"."schedule_rules") = 'array')
);
--> statement-breakpoint
CREATE TABLE "protocol_plans" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"protocols" jsonb NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "protocol_plans_name_check" CHECK (length("protocol_plans"."name") between 1 and 128),
	CONSTRAINT "protocol_plans_protocols_check" CHECK (jsonb_typeof("protocol_plans"."protocols") = 'array' and jsonb_array_length("protocol_plans"."protocols") >= 1)
);
--> statement-breakpoint
CREATE TABLE "release_plans" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"description" text,
	"release_on_logout" boolean DEFAULT false NOT NULL,
	"release_after_disconnect_seconds" integer DEFAULT -1 NOT NULL,
	"release_on_idle_seconds" integer DEFAULT -1 NOT NULL,
	"force_logout" boolean DEFAULT false NOT NULL,
	"warn_seconds" integer DEFAULT 0 NOT NULL,
	"warn_message" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "release_plans_name_check" CHECK (length("release_plans"."name") between 1 and 128),
	CONSTRAINT "release_plans_delays_check" CHECK ("release_plans"."release_after_disconnect_seconds" >= -1 and "release_plans"."release_on_idle_seconds" >= -1 and "release_plans"."warn_seconds" >= 0)
);
--> statement-breakpoint
CREATE TABLE "assignments" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid,
	"workstation_id" uuid,
	"pool_id" uuid,
	"policy_id" uuid,
	"mode" text NOT NULL,
	"state" text DEFAULT 'active' NOT NULL,
	"since" timestamp with time zone DEFAULT now() NOT NULL,
	"released_at" timestamp with time zone,
	"release_reason" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "assignments_mode_check" CHECK ("assignments"."mode" in ('floating', 'persistent')),
	CONSTRAINT "assignments_state_check" CHECK ("assignments"."state" in ('active', 'released')),
	CONSTRAINT "assignments_release_reason_check" CHECK ("assignments"."release_reason" in ('user', 'admin', 'logout', 'disconnect', 'idle', 'workstation-gone')),
	CONSTRAINT "assignments_released_check" CHECK (("assignments"."state" = 'active' and "assignments"."released_at" is null and "assignments"."release_reason" is null)
        or ("assignments"."state" = 'released' and "assignments"."released_at" is not null and "assignments"."release_reason" is not null
            and "assignments"."released_at" >= "assignments"."since")),
	CONSTRAINT "assignments_active_refs_check" CHECK ("assignments"."state" <> 'active' or ("assignments"."user_id" is not null and "assignments"."workstation_id" is not null))
);
--> statement-breakpoint
CREATE TABLE "connections" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"user_id" uuid,
	"workstation_id" uuid,
	"assignment_id" uuid,
	"protocol" text NOT NULL,
	"gateway_id" uuid,
	"client_address" "inet",
	"state" text DEFAULT 'starting' NOT NULL,
	"requested_at" timestamp with time zone DEFAULT now() NOT NULL,
	"ready_at" timestamp with time zone,
	"connected_at" timestamp with time zone,
	"closed_at" timestamp with time zone,
	"bytes_up" bigint DEFAULT 0 NOT NULL,
	"bytes_down" bigint DEFAULT 0 NOT NULL,
	"end_reason" text,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "connections_state_check" CHECK ("connections"."state" in ('starting', 'ready', 'connected', 'closed', 'failed')),
	CONSTRAINT "connections_protocol_check" CHECK ("connections"."protocol" in ('rdp', 'dcv', 'vnc', 'ssh', 'pcoip')),
	CONSTRAINT "connections_closed_check" CHECK (("connections"."state" in ('closed', 'failed')) = ("connections"."closed_at" is not null)),
	CONSTRAINT "connections_live_refs_check" CHECK ("connections"."state" in ('closed', 'failed') or ("connections"."user_id" is not null and "connections"."workstation_id" is not null)),
	CONSTRAINT "connections_bytes_check" CHECK ("connections"."bytes_up" >= 0 and "connections"."bytes_down" >= 0)
);
--> statement-breakpoint
CREATE TABLE "gateway_enrollments" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"token_hash" text NOT NULL,
	"cluster" text DEFAULT 'default' NOT NULL,
	"name" text,
	"expires_at" timestamp with time zone NOT NULL,
	"used_at" timestamp with time zone,
	"gateway_id" uuid,
	"created_by" uuid,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "gateway_enrollments_token_hash_key" UNIQUE("token_hash"),
	CONSTRAINT "gateway_enrollments_expiry_check" CHECK ("gateway_enrollments"."expires_at" > "gateway_enrollments"."created_at"),
	CONSTRAINT "gateway_enrollments_used_check" CHECK ("gateway_enrollments"."used_at" is null or "gateway_enrollments"."used_at" <= "gateway_enrollments"."expires_at")
);
--> statement-breakpoint
CREATE TABLE "gateways" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"name" text NOT NULL,
	"cluster" text DEFAULT 'default' NOT NULL,
	"public_address" text NOT NULL,
	"port_range_start" integer NOT NULL,
	"port_range_end" integer NOT NULL,
	"status" text DEFAULT 'enrolled' NOT NULL,
	"health" text DEFAULT 'unknown' NOT NULL,
	"load" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"version" text,
	"last_seen_at" timestamp with time zone,
	"credential_hash" text NOT NULL,
	"broker_node" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "gateways_credential_hash_key" UNIQUE("credential_hash"),
	CONSTRAINT "gateways_name_check" CHECK (length("gateways"."name") between 1 and 128),
	CONSTRAINT "gateways_status_check" CHECK ("gateways"."status" in ('enrolled', 'active', 'disabled', 'draining')),
	CONSTRAINT "gateways_health_check" CHECK ("gateways"."health" in ('unknown', 'healthy', 'unhealthy')),
	CONSTRAINT "gateways_port_range_check" CHECK ("gateways"."port_range_start" between 1 and 65535 and "gateways"."port_range_end" between 1 and 65535
        and "gateways"."port_range_start" <= "gateways"."port_range_end"),
	CONSTRAINT "gateways_load_check" CHECK (jsonb_typeof("gateways"."load") = 'object')
);
--> statement-breakpoint
CREATE TABLE "grants" (
	"id" uuid PRIMARY KEY DEFAULT gen_random_uuid() NOT NULL,
	"connection_id" uuid NOT NULL,
	"gateway_id" uuid,
	"gateway_cluster" text NOT NULL,
	"client_address" "inet" NOT NULL,
	"target_address" "inet" NOT NULL,
	"target_port" integer NOT NULL,
	"gateway_port" integer NOT NULL,
	"valid_until" timestamp with time zone NOT NULL,
	"session_until" timestamp with time zone,
	"state" text DEFAULT 'issued' NOT NULL,
	"used_at" timestamp with time zone,
	"revoked_at" timestamp with time zone,
	"closed_at" timestamp with time zone,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "grants_state_check" CHECK ("grants"."state" in ('issued', 'used', 'expired', 'revoked', 'closed')),
	CONSTRAINT "grants_ports_check" CHECK ("grants"."target_port" between 1 and 65535 and "grants"."gateway_port" between 1 and 65535),
	CONSTRAINT "grants_validity_check" CHECK ("grants"."valid_until" > "grants"."created_at"),
	CONSTRAINT "grants_live_gateway_check" CHECK ("grants"."state" not in ('issued', 'used') or "grants"."gateway_id" is not null),
	CONSTRAINT "grants_used_check" CHECK ("grants"."state" <> 'used' or "grants"."used_at" is not null),
	CONSTRAINT "grants_revoked_check" CHECK ("grants"."state" <> 'revoked' or "grants"."revoked_at" is not null),
	CONSTRAINT "grants_closed_check" CHECK ("grants"."state" <> 'closed' or "grants"."closed_at" is not null)
);
--> statement-breakpoint
ALTER TABLE "api_tokens" ADD CONSTRAINT "api_tokens_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "group_members" ADD CONSTRAINT "group_members_group_id_groups_id_fk" FOREIGN KEY ("group_id") REFERENCES "public"."groups"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "group_members" ADD CONSTRAINT "group_members_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "sessions" ADD CONSTRAINT "sessions_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "users" ADD CONSTRAINT "users_auth_server_id_auth_servers_id_fk" FOREIGN KEY ("auth_server_id") REFERENCES "public"."auth_servers"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "auth_server_group_mappings" ADD CONSTRAINT "auth_server_group_mappings_auth_server_id_auth_servers_id_fk" FOREIGN KEY ("auth_server_id") REFERENCES "public"."auth_servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "auth_server_group_mappings" ADD CONSTRAINT "auth_server_group_mappings_group_id_groups_id_fk" FOREIGN KEY ("group_id") REFERENCES "public"."groups"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "auth_servers" ADD CONSTRAINT "auth_servers_mfa_server_id_auth_servers_id_fk" FOREIGN KEY ("mfa_server_id") REFERENCES "public"."auth_servers"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "group_mfa_requirements" ADD CONSTRAINT "group_mfa_requirements_group_id_groups_id_fk" FOREIGN KEY ("group_id") REFERENCES "public"."groups"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "group_mfa_requirements" ADD CONSTRAINT "group_mfa_requirements_mfa_server_id_auth_servers_id_fk" FOREIGN KEY ("mfa_server_id") REFERENCES "public"."auth_servers"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pending_logins" ADD CONSTRAINT "pending_logins_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pending_logins" ADD CONSTRAINT "pending_logins_mfa_server_id_auth_servers_id_fk" FOREIGN KEY ("mfa_server_id") REFERENCES "public"."auth_servers"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pending_logins" ADD CONSTRAINT "pending_logins_password_server_id_auth_servers_id_fk" FOREIGN KEY ("password_server_id") REFERENCES "public"."auth_servers"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "totp_recovery_codes" ADD CONSTRAINT "totp_recovery_codes_user_id_user_totp_user_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."user_totp"("user_id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "user_totp" ADD CONSTRAINT "user_totp_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workstation_power_history" ADD CONSTRAINT "workstation_power_history_workstation_id_workstations_id_fk" FOREIGN KEY ("workstation_id") REFERENCES "public"."workstations"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workstation_power_history" ADD CONSTRAINT "workstation_power_history_pool_id_pools_id_fk" FOREIGN KEY ("pool_id") REFERENCES "public"."pools"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workstations" ADD CONSTRAINT "workstations_provider_id_providers_id_fk" FOREIGN KEY ("provider_id") REFERENCES "public"."providers"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workstations" ADD CONSTRAINT "workstations_pool_id_pools_id_fk" FOREIGN KEY ("pool_id") REFERENCES "public"."pools"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "workstations" ADD CONSTRAINT "workstations_launched_by_pool_id_pools_id_fk" FOREIGN KEY ("launched_by_pool_id") REFERENCES "public"."pools"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "pools" ADD CONSTRAINT "pools_provider_id_providers_id_fk" FOREIGN KEY ("provider_id") REFERENCES "public"."providers"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "policies" ADD CONSTRAINT "policies_protocol_plan_id_protocol_plans_id_fk" FOREIGN KEY ("protocol_plan_id") REFERENCES "public"."protocol_plans"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "policies" ADD CONSTRAINT "policies_power_plan_id_power_plans_id_fk" FOREIGN KEY ("power_plan_id") REFERENCES "public"."power_plans"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "policies" ADD CONSTRAINT "policies_release_plan_id_release_plans_id_fk" FOREIGN KEY ("release_plan_id") REFERENCES "public"."release_plans"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "policy_groups" ADD CONSTRAINT "policy_groups_policy_id_policies_id_fk" FOREIGN KEY ("policy_id") REFERENCES "public"."policies"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "policy_groups" ADD CONSTRAINT "policy_groups_group_id_groups_id_fk" FOREIGN KEY ("group_id") REFERENCES "public"."groups"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "policy_pools" ADD CONSTRAINT "policy_pools_policy_id_policies_id_fk" FOREIGN KEY ("policy_id") REFERENCES "public"."policies"("id") ON DELETE cascade ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "policy_pools" ADD CONSTRAINT "policy_pools_pool_id_pools_id_fk" FOREIGN KEY ("pool_id") REFERENCES "public"."pools"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "assignments" ADD CONSTRAINT "assignments_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "assignments" ADD CONSTRAINT "assignments_workstation_id_workstations_id_fk" FOREIGN KEY ("workstation_id") REFERENCES "public"."workstations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "assignments" ADD CONSTRAINT "assignments_pool_id_pools_id_fk" FOREIGN KEY ("pool_id") REFERENCES "public"."pools"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "assignments" ADD CONSTRAINT "assignments_policy_id_policies_id_fk" FOREIGN KEY ("policy_id") REFERENCES "public"."policies"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "connections" ADD CONSTRAINT "connections_user_id_users_id_fk" FOREIGN KEY ("user_id") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "connections" ADD CONSTRAINT "connections_workstation_id_workstations_id_fk" FOREIGN KEY ("workstation_id") REFERENCES "public"."workstations"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "connections" ADD CONSTRAINT "connections_assignment_id_assignments_id_fk" FOREIGN KEY ("assignment_id") REFERENCES "public"."assignments"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "connections" ADD CONSTRAINT "connections_gateway_id_gateways_id_fk" FOREIGN KEY ("gateway_id") REFERENCES "public"."gateways"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "gateway_enrollments" ADD CONSTRAINT "gateway_enrollments_gateway_id_gateways_id_fk" FOREIGN KEY ("gateway_id") REFERENCES "public"."gateways"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "gateway_enrollments" ADD CONSTRAINT "gateway_enrollments_created_by_users_id_fk" FOREIGN KEY ("created_by") REFERENCES "public"."users"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "grants" ADD CONSTRAINT "grants_connection_id_connections_id_fk" FOREIGN KEY ("connection_id") REFERENCES "public"."connections"("id") ON DELETE restrict ON UPDATE no action;--> statement-breakpoint
ALTER TABLE "grants" ADD CONSTRAINT "grants_gateway_id_gateways_id_fk" FOREIGN KEY ("gateway_id") REFERENCES "public"."gateways"("id") ON DELETE set null ON UPDATE no action;--> statement-breakpoint
CREATE UNIQUE INDEX "api_tokens_user_name_key" ON "api_tokens" USING btree ("user_id","name");--> statement-breakpoint
CREATE INDEX "api_tokens_user_idx" ON "api_tokens" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "group_members_user_idx" ON "group_members" USING btree ("user_id");--> statement-breakpoint
CREATE UNIQUE INDEX "groups_name_lower_key" ON "groups" USING btree (lower("name"));--> statement-breakpoint
CREATE INDEX "sessions_user_idx" ON "sessions" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "sessions_expires_idx" ON "sessions" USING btree ("expires_at");--> statement-breakpoint
CREATE UNIQUE INDEX "users_username_lower_key" ON "users" USING btree (lower("username"));--> statement-breakpoint
CREATE INDEX "auth_server_group_mappings_group_idx" ON "auth_server_group_mappings" USING btree ("group_id");--> statement-breakpoint
CREATE UNIQUE INDEX "auth_servers_name_lower_key" ON "auth_servers" USING btree (lower("name"));--> statement-breakpoint
CREATE INDEX "auth_servers_mfa_server_idx" ON "auth_servers" USING btree ("mfa_server_id");--> statement-breakpoint
CREATE INDEX "login_throttles_locked_idx" ON "login_throttles" USING btree ("locked_until") WHERE "login_throttles"."locked_until" is not null;--> statement-breakpoint
CREATE INDEX "login_throttles_updated_idx" ON "login_throttles" USING btree ("updated_at");--> statement-breakpoint
CREATE INDEX "pending_logins_user_idx" ON "pending_logins" USING btree ("user_id");--> statement-breakpoint
CREATE INDEX "pending_logins_expires_idx" ON "pending_logins" USING btree ("expires_at");--> statement-breakpoint
CREATE INDEX "audit_events_at_idx" ON "audit_events" USING btree ("at");--> statement-breakpoint
CREATE INDEX "audit_events_actor_idx" ON "audit_events" USING btree ("actor_user_id","at");--> statement-breakpoint
CREATE INDEX "audit_events_target_idx" ON "audit_events" USING btree ("target_type","target_id");--> statement-breakpoint
CREATE UNIQUE INDEX "timers_pending_key" ON "timers" USING btree ("kind","key") WHERE "timers"."state" = 'pending';--> statement-breakpoint
CREATE INDEX "timers_due_idx" ON "timers" USING btree ("due_at") WHERE "timers"."state" = 'pending';--> statement-breakpoint
CREATE UNIQUE INDEX "providers_name_lower_key" ON "providers" USING btree (lower("name"));--> statement-breakpoint
CREATE UNIQUE INDEX "workstation_power_history_open_key" ON "workstation_power_history" USING btree ("workstation_id") WHERE "workstation_power_history"."to_at" is null;--> statement-breakpoint
CREATE INDEX "workstation_power_history_workstation_idx" ON "workstation_power_history" USING btree ("workstation_id","from_at");--> statement-breakpoint
CREATE INDEX "workstation_power_history_from_idx" ON "workstation_power_history" USING btree ("from_at");--> statement-breakpoint
CREATE INDEX "workstations_pool_power_idx" ON "workstations" USING btree ("pool_id","power_state");--> statement-breakpoint
CREATE INDEX "workstations_provider_idx" ON "workstations" USING btree ("provider_id");--> statement-breakpoint
CREATE INDEX "workstations_launched_by_pool_idx" ON "workstations" USING btree ("launched_by_pool_id","launched_at");--> statement-breakpoint
CREATE INDEX "workstations_name_idx" ON "workstations" USING btree ("name");--> statement-breakpoint
CREATE UNIQUE INDEX "pools_name_lower_key" ON "pools" USING btree (lower("name"));--> statement-breakpoint
CREATE INDEX "pools_provider_idx" ON "pools" USING btree ("provider_id");--> statement-breakpoint
CREATE UNIQUE INDEX "policies_name_lower_key" ON "policies" USING btree (lower("name"));--> statement-breakpoint
CREATE INDEX "policies_protocol_plan_idx" ON "policies" USING btree ("protocol_plan_id");--> statement-breakpoint
CREATE INDEX "policies_power_plan_idx" ON "policies" USING btree ("power_plan_id");--> statement-breakpoint
CREATE INDEX "policies_release_plan_idx" ON "policies" USING btree ("release_plan_id");--> statement-breakpoint
CREATE INDEX "policy_groups_group_idx" ON "policy_groups" USING btree ("group_id");--> statement-breakpoint
CREATE INDEX "policy_pools_pool_idx" ON "policy_pools" USING btree ("pool_id");--> statement-breakpoint
CREATE UNIQUE INDEX "power_plans_name_lower_key" ON "power_plans" USING btree (lower("name"));--> statement-breakpoint
CREATE UNIQUE INDEX "protocol_plans_name_lower_key" ON "protocol_plans" USING btree (lower("name"));--> statement-breakpoint
CREATE UNIQUE INDEX "release_plans_name_lower_key" ON "release_plans" USING btree (lower("name"));--> statement-breakpoint
CREATE UNIQUE INDEX "assignments_active_workstation_key" ON "assignments" USING btree ("workstation_id") WHERE "assignments"."state" = 'active';--> statement-breakpoint
CREATE INDEX "assignments_active_user_idx" ON "assignments" USING btree ("user_id","pool_id") WHERE "assignments"."state" = 'active';--> statement-breakpoint
CREATE INDEX "assignments_active_pool_idx" ON "assignments" USING btree ("pool_id") WHERE "assignments"."state" = 'active';--> statement-breakpoint
CREATE INDEX "assignments_user_since_idx" ON "assignments" USING btree ("user_id","since");--> statement-breakpoint
CREATE INDEX "assignments_workstation_since_idx" ON "assignments" USING btree ("workstation_id","since");--> statement-breakpoint
CREATE INDEX "connections_user_requested_idx" ON "connections" USING btree ("user_id","requested_at");--> statement-breakpoint
CREATE INDEX "connections_requested_idx" ON "connections" USING btree ("requested_at");--> statement-breakpoint
CREATE INDEX "connections_assignment_idx" ON "connections" USING btree ("assignment_id");--> statement-breakpoint
CREATE INDEX "connections_live_workstation_idx" ON "connections" USING btree ("workstation_id") WHERE "connections"."state" in ('starting', 'ready', 'connected');--> statement-breakpoint
CREATE INDEX "connections_live_gateway_idx" ON "connections" USING btree ("gateway_id") WHERE "connections"."state" in ('starting', 'ready', 'connected');--> statement-breakpoint
CREATE UNIQUE INDEX "gateways_name_lower_key" ON "gateways" USING btree (lower("name"));--> statement-breakpoint
CREATE INDEX "gateways_cluster_status_idx" ON "gateways" USING btree ("cluster","status");--> statement-breakpoint
CREATE UNIQUE INDEX "grants_live_gateway_port_key" ON "grants" USING btree ("gateway_id","gateway_port") WHERE "grants"."state" in ('issued', 'used');--> statement-breakpoint
CREATE INDEX "grants_live_cluster_idx" ON "grants" USING btree ("gateway_cluster") WHERE "grants"."state" in ('issued', 'used');--> statement-breakpoint
CREATE INDEX "grants_issued_valid_until_idx" ON "grants" USING btree ("valid_until") WHERE "grants"."state" = 'issued';--> statement-breakpoint
CREATE INDEX "grants_connection_idx" ON "grants" USING btree ("connection_id");