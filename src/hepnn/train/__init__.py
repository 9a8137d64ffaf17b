"""Training: one engine for every task, with its losses, optimizers, schedules, initialization and regularization."""
