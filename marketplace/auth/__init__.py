"""Users, credentials (JWT access/refresh tokens, organisation API keys) and who may call what."""
