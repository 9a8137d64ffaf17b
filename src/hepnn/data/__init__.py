"""Data: canonical fields, readers, physics features, preprocessing, batches and loaders."""
