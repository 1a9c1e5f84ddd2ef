-- The `boards` schema exactly as the original backend's Alembic head (a1b2c3d4e5f6) leaves it:
-- same tables, columns, types, defaults, constraint and index names. See contract §4.
CREATE EXTENSION IF NOT EXISTS "uuid-ossp";
CREATE SCHEMA IF NOT EXISTS boards;

CREATE TABLE boards.tenants (
    id uuid NOT NULL DEFAULT uuid_generate_v4(),
    name varchar(255) NOT NULL,
    slug varchar(255) NOT NULL,
    settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT tenants_pkey PRIMARY KEY (id),
    CONSTRAINT tenants_slug_key UNIQUE (slug)
);

CREATE TABLE boards.provider_configs (
    id uuid NOT NULL DEFAULT uuid_generate_v4(),
    tenant_id uuid NOT NULL,
    provider_name varchar(100) NOT NULL,
    config jsonb NOT NULL,
    is_enabled boolean NOT NULL DEFAULT true,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT provider_configs_pkey PRIMARY KEY (id),
    CONSTRAINT provider_configs_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES boards.tenants (id) ON DELETE CASCADE,
    CONSTRAINT provider_configs_tenant_id_provider_name_key UNIQUE (tenant_id, provider_name)
);

CREATE TABLE boards.users (
    id uuid NOT NULL DEFAULT uuid_generate_v4(),
    tenant_id uuid NOT NULL,
    auth_provider varchar(50) NOT NULL,
    auth_subject varchar(255) NOT NULL,
    email varchar(255),
    display_name varchar(255),
    avatar_url text,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT users_pkey PRIMARY KEY (id),
    CONSTRAINT users_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES boards.tenants (id) ON DELETE CASCADE,
    CONSTRAINT users_tenant_id_auth_provider_auth_subject_key
        UNIQUE (tenant_id, auth_provider, auth_subject)
);
CREATE INDEX idx_users_auth ON boards.users (auth_provider, auth_subject);
CREATE INDEX idx_users_tenant ON boards.users (tenant_id);

CREATE TABLE boards.boards (
    id uuid NOT NULL DEFAULT uuid_generate_v4(),
    tenant_id uuid NOT NULL,
    owner_id uuid NOT NULL,
    title varchar(255) NOT NULL,
    description text,
    is_public boolean NOT NULL DEFAULT false,
    settings jsonb NOT NULL DEFAULT '{}'::jsonb,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT boards_pkey PRIMARY KEY (id),
    CONSTRAINT boards_owner_id_fkey FOREIGN KEY (owner_id)
        REFERENCES boards.users (id) ON DELETE CASCADE,
    CONSTRAINT boards_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES boards.tenants (id) ON DELETE CASCADE
);
CREATE INDEX idx_boards_owner ON boards.boards (owner_id);
CREATE INDEX idx_boards_tenant ON boards.boards (tenant_id);

CREATE TABLE boards.lora_models (
    id uuid NOT NULL DEFAULT uuid_generate_v4(),
    tenant_id uuid NOT NULL,
    user_id uuid NOT NULL,
    name varchar(255) NOT NULL,
    base_model varchar(100) NOT NULL,
    storage_url text NOT NULL,
    config jsonb NOT NULL,
    trigger_word varchar(100),
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    is_public boolean NOT NULL DEFAULT false,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT lora_models_pkey PRIMARY KEY (id),
    CONSTRAINT lora_models_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES boards.tenants (id) ON DELETE CASCADE,
    CONSTRAINT lora_models_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES boards.users (id) ON DELETE CASCADE
);

CREATE TABLE boards.board_members (
    id uuid NOT NULL DEFAULT uuid_generate_v4(),
    board_id uuid NOT NULL,
    user_id uuid NOT NULL,
    role varchar(20) NOT NULL,
    invited_by uuid,
    joined_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT board_members_pkey PRIMARY KEY (id),
    CONSTRAINT board_members_board_id_user_id_key UNIQUE (board_id, user_id),
    CONSTRAINT board_members_role_check CHECK (role IN ('viewer', 'editor', 'admin')),
    CONSTRAINT board_members_board_id_fkey FOREIGN KEY (board_id)
        REFERENCES boards.boards (id) ON DELETE CASCADE,
    CONSTRAINT board_members_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES boards.users (id) ON DELETE CASCADE,
    CONSTRAINT board_members_invited_by_fkey FOREIGN KEY (invited_by)
        REFERENCES boards.users (id)
);
CREATE INDEX idx_board_members_board ON boards.board_members (board_id);
CREATE INDEX idx_board_members_user ON boards.board_members (user_id);

CREATE TABLE boards.generations (
    id uuid NOT NULL DEFAULT uuid_generate_v4(),
    tenant_id uuid NOT NULL,
    board_id uuid NOT NULL,
    user_id uuid NOT NULL,
    generator_name varchar(100) NOT NULL,
    artifact_type varchar(50) NOT NULL,
    input_params jsonb NOT NULL,
    status varchar(50) NOT NULL DEFAULT 'pending',
    storage_url text,
    thumbnail_url text,
    additional_files jsonb NOT NULL DEFAULT '[]'::jsonb,
    output_metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    input_artifacts jsonb NOT NULL DEFAULT '[]'::jsonb,
    external_job_id varchar(255),
    progress numeric(5, 2) NOT NULL DEFAULT 0.0,
    error_message text,
    started_at timestamptz,
    completed_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT generations_pkey PRIMARY KEY (id),
    CONSTRAINT generations_board_id_fkey FOREIGN KEY (board_id)
        REFERENCES boards.boards (id) ON DELETE CASCADE,
    CONSTRAINT generations_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES boards.tenants (id) ON DELETE CASCADE,
    CONSTRAINT generations_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES boards.users (id) ON DELETE CASCADE
);
CREATE INDEX idx_generations_board ON boards.generations (board_id);
CREATE INDEX idx_generations_status ON boards.generations (status);
CREATE INDEX idx_generations_tenant ON boards.generations (tenant_id);
CREATE INDEX idx_generations_user ON boards.generations (user_id);
CREATE INDEX idx_generations_input_artifacts_gin ON boards.generations USING gin (input_artifacts);

CREATE TABLE boards.credit_transactions (
    id uuid NOT NULL DEFAULT uuid_generate_v4(),
    tenant_id uuid NOT NULL,
    user_id uuid NOT NULL,
    transaction_type varchar(20) NOT NULL,
    amount numeric(10, 4) NOT NULL,
    balance_after numeric(10, 4) NOT NULL,
    generation_id uuid,
    description text,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT credit_transactions_pkey PRIMARY KEY (id),
    CONSTRAINT credit_transactions_transaction_type_check
        CHECK (transaction_type IN ('reserve', 'finalize', 'refund', 'purchase', 'grant')),
    CONSTRAINT credit_transactions_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES boards.tenants (id) ON DELETE CASCADE,
    CONSTRAINT credit_transactions_user_id_fkey FOREIGN KEY (user_id)
        REFERENCES boards.users (id) ON DELETE CASCADE,
    CONSTRAINT credit_transactions_generation_id_fkey FOREIGN KEY (generation_id)
        REFERENCES boards.generations (id)
);
CREATE INDEX idx_credit_transactions_user ON boards.credit_transactions (user_id);

CREATE TABLE boards.tags (
    id uuid NOT NULL DEFAULT uuid_generate_v4(),
    tenant_id uuid NOT NULL,
    name varchar(100) NOT NULL,
    slug varchar(100) NOT NULL,
    description text,
    metadata jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT tags_pkey PRIMARY KEY (id),
    CONSTRAINT tags_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES boards.tenants (id) ON DELETE CASCADE,
    CONSTRAINT tags_tenant_id_slug_key UNIQUE (tenant_id, slug)
);
CREATE INDEX idx_tags_slug ON boards.tags (slug);
CREATE INDEX idx_tags_tenant ON boards.tags (tenant_id);

CREATE TABLE boards.generation_tags (
    id uuid NOT NULL DEFAULT uuid_generate_v4(),
    generation_id uuid NOT NULL,
    tag_id uuid NOT NULL,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT generation_tags_pkey PRIMARY KEY (id),
    CONSTRAINT generation_tags_generation_id_fkey FOREIGN KEY (generation_id)
        REFERENCES boards.generations (id) ON DELETE CASCADE,
    CONSTRAINT generation_tags_tag_id_fkey FOREIGN KEY (tag_id)
        REFERENCES boards.tags (id) ON DELETE CASCADE,
    CONSTRAINT generation_tags_generation_id_tag_id_key UNIQUE (generation_id, tag_id)
);
CREATE INDEX idx_generation_tags_generation ON boards.generation_tags (generation_id);
CREATE INDEX idx_generation_tags_tag ON boards.generation_tags (tag_id);
