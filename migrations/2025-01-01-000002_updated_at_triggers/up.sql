-- updated_at maintenance, as the original's migration a1b2c3d4e5f6.
CREATE OR REPLACE FUNCTION boards.update_updated_at_column()
RETURNS TRIGGER AS $$
BEGIN
    NEW.updated_at = CURRENT_TIMESTAMP;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER trg_tenants_updated_at BEFORE UPDATE ON boards.tenants
    FOR EACH ROW EXECUTE FUNCTION boards.update_updated_at_column();
CREATE TRIGGER trg_provider_configs_updated_at BEFORE UPDATE ON boards.provider_configs
    FOR EACH ROW EXECUTE FUNCTION boards.update_updated_at_column();
CREATE TRIGGER trg_users_updated_at BEFORE UPDATE ON boards.users
    FOR EACH ROW EXECUTE FUNCTION boards.update_updated_at_column();
CREATE TRIGGER trg_boards_updated_at BEFORE UPDATE ON boards.boards
    FOR EACH ROW EXECUTE FUNCTION boards.update_updated_at_column();
CREATE TRIGGER trg_lora_models_updated_at BEFORE UPDATE ON boards.lora_models
    FOR EACH ROW EXECUTE FUNCTION boards.update_updated_at_column();
CREATE TRIGGER trg_generations_updated_at BEFORE UPDATE ON boards.generations
    FOR EACH ROW EXECUTE FUNCTION boards.update_updated_at_column();
CREATE TRIGGER trg_tags_updated_at BEFORE UPDATE ON boards.tags
    FOR EACH ROW EXECUTE FUNCTION boards.update_updated_at_column();
