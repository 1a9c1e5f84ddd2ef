ALTER TABLE boards.tenants DROP CONSTRAINT IF EXISTS tenants_status_check;
ALTER TABLE boards.tenants DROP COLUMN IF EXISTS status;
DROP TABLE IF EXISTS boards.tenant_members;
