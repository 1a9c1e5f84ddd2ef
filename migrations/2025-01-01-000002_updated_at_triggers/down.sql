DROP TRIGGER IF EXISTS trg_tags_updated_at ON boards.tags;
DROP TRIGGER IF EXISTS trg_generations_updated_at ON boards.generations;
DROP TRIGGER IF EXISTS trg_lora_models_updated_at ON boards.lora_models;
DROP TRIGGER IF EXISTS trg_boards_updated_at ON boards.boards;
DROP TRIGGER IF EXISTS trg_users_updated_at ON boards.users;
DROP TRIGGER IF EXISTS trg_provider_configs_updated_at ON boards.provider_configs;
DROP TRIGGER IF EXISTS trg_tenants_updated_at ON boards.tenants;
DROP FUNCTION IF EXISTS boards.update_updated_at_column();
