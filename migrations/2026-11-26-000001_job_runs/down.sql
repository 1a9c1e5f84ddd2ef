DROP TABLE IF EXISTS boards.job_runs;
