"""Training objectives, one module per idea."""
