-- Who registered a tenant through POST /api/tenants/register (identity: provider, subject).
-- BOARDS_TENANT_REGISTRATION_MAX_PER_USER counts these rows, not admin memberships: a
-- registrant who hands the admin role to another identity and steps down has still registered
-- the tenant. NULL for tenants made by operators and for the default tenant.
ALTER TABLE boards.tenants
    ADD COLUMN registered_by_provider text,
    ADD COLUMN registered_by_subject text;
CREATE INDEX idx_tenants_registrant ON boards.tenants (registered_by_provider, registered_by_subject)
    WHERE registered_by_provider IS NOT NULL;
