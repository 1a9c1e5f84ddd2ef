DROP INDEX IF EXISTS boards.idx_tenants_registrant;
ALTER TABLE boards.tenants
    DROP COLUMN IF EXISTS registered_by_subject,
    DROP COLUMN IF EXISTS registered_by_provider;
