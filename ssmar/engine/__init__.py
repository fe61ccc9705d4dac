"""Training engine: loop, EMA, schedules, checkpoints, evaluation and metrics."""
