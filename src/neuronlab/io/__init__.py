"""Reading untrusted files safely (checkpoints, images) and writing files atomically."""
