"""Platform-admin endpoints that belong to the shell (organisation verification, audit log)."""
