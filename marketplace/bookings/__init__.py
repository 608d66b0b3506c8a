"""Bookings: the timed lifecycle of booked machine time and lab samples, with reviews, notifications,
outbound webhooks and iCal feeds."""
