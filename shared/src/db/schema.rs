// @generated automatically by Diesel CLI.

pub mod boards {
    diesel::table! {
        boards.board_members (id) {
            id -> Uuid,
            board_id -> Uuid,
            user_id -> Uuid,
            #[max_length = 20]
            role -> Varchar,
            invited_by -> Nullable<Uuid>,
            joined_at -> Timestamptz,
        }
    }

    diesel::table! {
        boards.boards (id) {
            id -> Uuid,
            tenant_id -> Uuid,
            owner_id -> Uuid,
            #[max_length = 255]
            title -> Varchar,
            description -> Nullable<Text>,
            is_public -> Bool,
            settings -> Jsonb,
            metadata -> Jsonb,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        boards.credit_transactions (id) {
            id -> Uuid,
            tenant_id -> Uuid,
            user_id -> Uuid,
            #[max_length = 20]
            transaction_type -> Varchar,
            amount -> Numeric,
            balance_after -> Numeric,
            generation_id -> Nullable<Uuid>,
            description -> Nullable<Text>,
            metadata -> Jsonb,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        boards.generation_tags (id) {
            id -> Uuid,
            generation_id -> Uuid,
            tag_id -> Uuid,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        boards.generations (id) {
            id -> Uuid,
            tenant_id -> Uuid,
            board_id -> Uuid,
            user_id -> Uuid,
            #[max_length = 100]
            generator_name -> Varchar,
            #[max_length = 50]
            artifact_type -> Varchar,
            input_params -> Jsonb,
            #[max_length = 50]
            status -> Varchar,
            storage_url -> Nullable<Text>,
            thumbnail_url -> Nullable<Text>,
            additional_files -> Jsonb,
            output_metadata -> Jsonb,
            input_artifacts -> Jsonb,
            #[max_length = 255]
            external_job_id -> Nullable<Varchar>,
            progress -> Numeric,
            error_message -> Nullable<Text>,
            started_at -> Nullable<Timestamptz>,
            completed_at -> Nullable<Timestamptz>,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        boards.job_outbox (id) {
            id -> Int8,
            generation_id -> Uuid,
            message -> Jsonb,
            created_at -> Timestamptz,
            available_at -> Timestamptz,
            publish_attempts -> Int4,
            last_error -> Nullable<Text>,
        }
    }

    diesel::table! {
        boards.job_runs (generation_id) {
            generation_id -> Uuid,
            worker_id -> Text,
            attempt -> Int4,
            claimed_at -> Timestamptz,
            lease_until -> Timestamptz,
        }
    }

    diesel::table! {
        boards.lora_models (id) {
            id -> Uuid,
            tenant_id -> Uuid,
            user_id -> Uuid,
            #[max_length = 255]
            name -> Varchar,
            #[max_length = 100]
            base_model -> Varchar,
            storage_url -> Text,
            config -> Jsonb,
            #[max_length = 100]
            trigger_word -> Nullable<Varchar>,
            metadata -> Jsonb,
            is_public -> Bool,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        boards.provider_configs (id) {
            id -> Uuid,
            tenant_id -> Uuid,
            #[max_length = 100]
            provider_name -> Varchar,
            config -> Jsonb,
            is_enabled -> Bool,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        boards.tags (id) {
            id -> Uuid,
            tenant_id -> Uuid,
            #[max_length = 100]
            name -> Varchar,
            #[max_length = 100]
            slug -> Varchar,
            description -> Nullable<Text>,
            metadata -> Jsonb,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        boards.tenant_members (tenant_id, auth_provider, auth_subject) {
            tenant_id -> Uuid,
            auth_provider -> Text,
            auth_subject -> Text,
            role -> Text,
            created_at -> Timestamptz,
        }
    }

    diesel::table! {
        boards.tenants (id) {
            id -> Uuid,
            #[max_length = 255]
            name -> Varchar,
            #[max_length = 255]
            slug -> Varchar,
            settings -> Jsonb,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
            #[max_length = 20]
            status -> Varchar,
            registered_by_provider -> Nullable<Text>,
            registered_by_subject -> Nullable<Text>,
        }
    }

    diesel::table! {
        boards.users (id) {
            id -> Uuid,
            tenant_id -> Uuid,
            #[max_length = 50]
            auth_provider -> Varchar,
            #[max_length = 255]
            auth_subject -> Varchar,
            #[max_length = 255]
            email -> Nullable<Varchar>,
            #[max_length = 255]
            display_name -> Nullable<Varchar>,
            avatar_url -> Nullable<Text>,
            metadata -> Jsonb,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
        }
    }

    diesel::table! {
        boards.webhook_deliveries (id) {
            id -> Uuid,
            webhook_id -> Uuid,
            event_type -> Text,
            payload -> Jsonb,
            #[max_length = 20]
            status -> Varchar,
            attempts -> Int4,
            last_status_code -> Nullable<Int4>,
            last_error -> Nullable<Text>,
            published -> Bool,
            publish_after -> Timestamptz,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
            delivered_at -> Nullable<Timestamptz>,
            traceparent -> Nullable<Text>,
        }
    }

    diesel::table! {
        boards.webhooks (id) {
            id -> Uuid,
            tenant_id -> Uuid,
            board_id -> Uuid,
            url -> Text,
            description -> Nullable<Text>,
            event_types -> Array<Nullable<Text>>,
            secret -> Text,
            previous_secret -> Nullable<Text>,
            previous_secret_expires_at -> Nullable<Timestamptz>,
            enabled -> Bool,
            created_by -> Nullable<Uuid>,
            created_at -> Timestamptz,
            updated_at -> Timestamptz,
        }
    }

    diesel::joinable!(board_members -> boards (board_id));
    diesel::joinable!(boards -> tenants (tenant_id));
    diesel::joinable!(boards -> users (owner_id));
    diesel::joinable!(credit_transactions -> generations (generation_id));
    diesel::joinable!(credit_transactions -> tenants (tenant_id));
    diesel::joinable!(credit_transactions -> users (user_id));
    diesel::joinable!(generation_tags -> generations (generation_id));
    diesel::joinable!(generation_tags -> tags (tag_id));
    diesel::joinable!(generations -> boards (board_id));
    diesel::joinable!(generations -> tenants (tenant_id));
    diesel::joinable!(generations -> users (user_id));
    diesel::joinable!(job_outbox -> generations (generation_id));
    diesel::joinable!(job_runs -> generations (generation_id));
    diesel::joinable!(lora_models -> tenants (tenant_id));
    diesel::joinable!(lora_models -> users (user_id));
    diesel::joinable!(provider_configs -> tenants (tenant_id));
    diesel::joinable!(tags -> tenants (tenant_id));
    diesel::joinable!(tenant_members -> tenants (tenant_id));
    diesel::joinable!(users -> tenants (tenant_id));
    diesel::joinable!(webhook_deliveries -> webhooks (webhook_id));
    diesel::joinable!(webhooks -> boards (board_id));
    diesel::joinable!(webhooks -> tenants (tenant_id));
    diesel::joinable!(webhooks -> users (created_by));

    diesel::allow_tables_to_appear_in_same_query!(
        board_members,
        boards,
        credit_transactions,
        generation_tags,
        generations,
        job_outbox,
        job_runs,
        lora_models,
        provider_configs,
        tags,
        tenant_members,
        tenants,
        users,
        webhook_deliveries,
        webhooks,
    );
}
