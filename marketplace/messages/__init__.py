"""messages room."""
