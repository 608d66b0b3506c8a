"""documents room."""
