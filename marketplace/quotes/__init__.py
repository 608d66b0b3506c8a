"""quotes room."""
