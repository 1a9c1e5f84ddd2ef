-- Our addition (not in the original): the transactional outbox of job messages. A generation
-- row and its queue message are written in one transaction; a relay publishes the message to
-- RabbitMQ with publisher confirms and deletes the row only after the broker confirmed it.
CREATE TABLE boards.job_outbox (
    id bigserial NOT NULL,
    generation_id uuid NOT NULL,
    -- The versioned message envelope to publish (small: ids, attempt, trace/request id).
    message jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    -- Earliest time the relay may (re)try; pushed back after a failed publish.
    available_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    publish_attempts integer NOT NULL DEFAULT 0,
    last_error text,
    CONSTRAINT job_outbox_pkey PRIMARY KEY (id),
    CONSTRAINT job_outbox_generation_id_fkey FOREIGN KEY (generation_id)
        REFERENCES boards.generations (id) ON DELETE CASCADE
);
CREATE INDEX idx_job_outbox_available ON boards.job_outbox (available_at, id);
CREATE INDEX idx_job_outbox_generation ON boards.job_outbox (generation_id);
