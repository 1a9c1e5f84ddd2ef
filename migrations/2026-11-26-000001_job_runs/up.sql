-- Our addition: one row per claimed job. A worker claims a pending generation (or one whose
-- lease ran out) by setting it `processing` and writing its lease here in the same statement;
-- it renews the lease while it runs; the reaper hands jobs with expired leases back to the queue.
CREATE TABLE boards.job_runs (
    generation_id uuid NOT NULL,
    worker_id text NOT NULL,
    attempt integer NOT NULL DEFAULT 1,
    claimed_at timestamptz NOT NULL DEFAULT CURRENT_TIMESTAMP,
    lease_until timestamptz NOT NULL,
    CONSTRAINT job_runs_pkey PRIMARY KEY (generation_id),
    CONSTRAINT job_runs_generation_id_fkey FOREIGN KEY (generation_id)
        REFERENCES boards.generations (id) ON DELETE CASCADE
);
CREATE INDEX idx_job_runs_lease ON boards.job_runs (lease_until);
