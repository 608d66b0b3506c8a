"""Listings: capacity assets, process/material taxonomy and availability calendars."""
