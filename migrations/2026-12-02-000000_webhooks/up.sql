-- Our addition (issue 12): webhooks. Board owners and admins register endpoints for the event
-- types they want; each event becomes one delivery row per matching endpoint, written by a
-- trigger in the transaction that changed the generation (so no code path can miss one, and a
-- rolled-back change sends nothing). The delivery row is also the outbox: the API's relay
-- publishes unpublished rows to RabbitMQ, workers send them (Standard Webhooks) and record
-- the outcome.
CREATE TABLE boards.webhooks (
    id uuid NOT NULL DEFAULT uuid_generate_v4(),
    tenant_id uuid NOT NULL,
    board_id uuid NOT NULL,
    url text NOT NULL,
    description text,
    event_types text[] NOT NULL,
    -- The signing key (base64, shown to the owner as `whsec_<key>`); the previous one keeps
    -- signing too until it expires, so receivers can roll over.
    secret text NOT NULL,
    previous_secret text,
    previous_secret_expires_at timestamptz,
    enabled boolean NOT NULL DEFAULT true,
    created_by uuid,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    CONSTRAINT webhooks_pkey PRIMARY KEY (id),
    CONSTRAINT webhooks_tenant_id_fkey FOREIGN KEY (tenant_id)
        REFERENCES boards.tenants (id) ON DELETE CASCADE,
    CONSTRAINT webhooks_board_id_fkey FOREIGN KEY (board_id)
        REFERENCES boards.boards (id) ON DELETE CASCADE,
    CONSTRAINT webhooks_created_by_fkey FOREIGN KEY (created_by)
        REFERENCES boards.users (id) ON DELETE SET NULL
);
CREATE INDEX idx_webhooks_board ON boards.webhooks (board_id);
CREATE TRIGGER trg_webhooks_updated_at BEFORE UPDATE ON boards.webhooks
    FOR EACH ROW EXECUTE FUNCTION boards.update_updated_at_column();

CREATE TABLE boards.webhook_deliveries (
    -- Also the Standard Webhooks message id (`webhook-id: msg_<id without dashes>`): the same
    -- on every attempt and on a resend, so receivers can drop duplicates.
    id uuid NOT NULL DEFAULT uuid_generate_v4(),
    webhook_id uuid NOT NULL,
    event_type text NOT NULL,
    payload jsonb NOT NULL,
    status varchar(20) NOT NULL DEFAULT 'pending',
    attempts integer NOT NULL DEFAULT 0,
    last_status_code integer,
    last_error text,
    -- Outbox state: not yet confirmed by RabbitMQ; the relay leases rows by pushing
    -- publish_after forward.
    published boolean NOT NULL DEFAULT false,
    publish_after timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    delivered_at timestamptz,
    -- W3C traceparent of the change that caused the event (the request, or the worker's job),
    -- when it ran in a trace: the worker's send continues it.
    traceparent text,
    CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (id),
    CONSTRAINT webhook_deliveries_webhook_id_fkey FOREIGN KEY (webhook_id)
        REFERENCES boards.webhooks (id) ON DELETE CASCADE,
    CONSTRAINT webhook_deliveries_status_check
        CHECK (status IN ('pending', 'delivered', 'failed'))
);
CREATE INDEX idx_webhook_deliveries_webhook ON boards.webhook_deliveries (webhook_id, created_at DESC);
CREATE INDEX idx_webhook_deliveries_unpublished ON boards.webhook_deliveries (publish_after)
    WHERE NOT published;
CREATE INDEX idx_webhook_deliveries_created ON boards.webhook_deliveries (created_at);
CREATE TRIGGER trg_webhook_deliveries_updated_at BEFORE UPDATE ON boards.webhook_deliveries
    FOR EACH ROW EXECUTE FUNCTION boards.update_updated_at_column();

-- generation.created on insert (and the terminal event too when the row is born finished: an
-- upload); generation.completed / .failed / .cancelled when the status becomes terminal. The
-- payload is the Standard Webhooks envelope {type, timestamp, data}. The transaction names its
-- trace in the setting `boards.traceparent` (`set_config(..., true)`: that transaction only);
-- changes made outside any trace (the reaper) leave it unset.
CREATE FUNCTION boards.enqueue_generation_webhooks() RETURNS trigger AS $$
DECLARE
    events text[];
BEGIN
    IF TG_OP = 'INSERT' THEN
        events := ARRAY['generation.created'];
        IF NEW.status IN ('completed', 'failed', 'cancelled') THEN
            events := events || ('generation.' || NEW.status);
        END IF;
    ELSIF NEW.status IS DISTINCT FROM OLD.status
          AND NEW.status IN ('completed', 'failed', 'cancelled') THEN
        events := ARRAY['generation.' || NEW.status];
    ELSE
        RETURN NULL;
    END IF;
    INSERT INTO boards.webhook_deliveries (webhook_id, event_type, payload, traceparent)
    SELECT w.id, e.event, jsonb_build_object(
        'type', e.event,
        'timestamp', to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'data', jsonb_build_object(
            'generation_id', NEW.id,
            'board_id', NEW.board_id,
            'tenant_id', NEW.tenant_id,
            'user_id', NEW.user_id,
            'generator_name', NEW.generator_name,
            'artifact_type', NEW.artifact_type,
            'status', NEW.status,
            'storage_url', NEW.storage_url,
            'thumbnail_url', NEW.thumbnail_url,
            'error_message', NEW.error_message,
            'created_at', NEW.created_at,
            'completed_at', NEW.completed_at)),
        NULLIF(current_setting('boards.traceparent', true), '')
    FROM boards.webhooks w
    CROSS JOIN unnest(events) WITH ORDINALITY AS e(event, n)
    WHERE w.board_id = NEW.board_id AND w.enabled AND e.event = ANY (w.event_types)
    ORDER BY e.n;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER trg_generations_webhooks AFTER INSERT OR UPDATE OF status ON boards.generations
    FOR EACH ROW EXECUTE FUNCTION boards.enqueue_generation_webhooks();
