-- Our addition: who may act in a tenant. `users` rows are per tenant (one per tenant a person
-- has used), so membership is keyed by identity (provider, subject), not by user id: a member
-- of a tenant may select it with `X-Tenant` before ever having a `users` row there.
CREATE TABLE boards.tenant_members (
    tenant_id uuid NOT NULL,
    auth_provider text NOT NULL,
    auth_subject text NOT NULL,
    role text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT tenant_members_pkey PRIMARY KEY (tenant_id, auth_provider, auth_subject),
    CONSTRAINT tenant_members_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES boards.tenants (id) ON DELETE CASCADE,
    CONSTRAINT tenant_members_role_check CHECK (role IN ('admin', 'member'))
);
CREATE INDEX idx_tenant_members_identity ON boards.tenant_members (auth_provider, auth_subject);

-- Self-registered tenants can wait for an operator's approval (BOARDS_TENANT_REGISTRATION_
-- REQUIRES_APPROVAL); nobody resolves into a tenant until it is `active`. Existing tenants and
-- tenants created by operators are active.
ALTER TABLE boards.tenants
    ADD COLUMN status varchar(20) NOT NULL DEFAULT 'active',
    ADD CONSTRAINT tenants_status_check CHECK (status IN ('active', 'pending_approval'));
