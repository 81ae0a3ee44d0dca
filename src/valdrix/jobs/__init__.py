"""Background jobs on PostgreSQL (procrastinate): enqueue, schedules, workers, visibility."""
