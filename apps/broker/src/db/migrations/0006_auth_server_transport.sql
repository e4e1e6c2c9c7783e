-- hand-written: auth servers stored before these settings existed keep their behaviour (ADR 0015).
-- LDAP: plain ldap:// without StartTLS now needs "allowInsecure": true; servers that already worked that
-- way get it (the console shows them with a warning), every other LDAP server gets false.
UPDATE "auth_servers"
SET "config" = "config" || jsonb_build_object('allowInsecure',
  coalesce(("config"->>'startTls')::boolean, false) = false
  AND EXISTS (SELECT 1 FROM jsonb_array_elements_text(coalesce("config"->'urls', '[]'::jsonb)) AS u(url) WHERE lower(u.url) LIKE 'ldap://%'))
WHERE "kind" = 'ldap' AND NOT ("config" ? 'allowInsecure');
--> statement-breakpoint
-- RADIUS: new servers require a Message-Authenticator in every answer (BlastRADIUS); existing ones keep accepting answers without.
UPDATE "auth_servers"
SET "config" = "config" || '{"requireMessageAuthenticator": false}'::jsonb
WHERE "kind" = 'radius' AND NOT ("config" ? 'requireMessageAuthenticator');
