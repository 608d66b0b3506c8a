"""Organisations (suppliers and buyers), memberships and company verification."""
