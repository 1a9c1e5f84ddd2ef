-- The original seeds the default tenant in migration 553dc6a50a20. Its name and slug came from
-- BOARDS_TENANT_NAME / BOARDS_TENANT_SLUG; SQL migrations cannot read the environment, so the
-- defaults are seeded here and the API ensures the configured default tenant at startup.
INSERT INTO boards.tenants (name, slug, settings)
SELECT 'Default Tenant', 'default', '{}'::jsonb
WHERE NOT EXISTS (SELECT 1 FROM boards.tenants WHERE slug = 'default');
