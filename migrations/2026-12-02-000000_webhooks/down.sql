DROP TRIGGER IF EXISTS trg_generations_webhooks ON boards.generations;
DROP FUNCTION IF EXISTS boards.enqueue_generation_webhooks();
DROP TABLE IF EXISTS boards.webhook_deliveries;
DROP TABLE IF EXISTS boards.webhooks;
