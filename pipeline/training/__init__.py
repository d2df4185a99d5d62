"""Training: losses, schedules, distributed helpers and the per-fold loop with exact resume."""
