"""Innovation vouchers (创新券): programmes of science-and-technology bureaus and park operators that pay part of
an SME's testing or machine bill, their vouchers, redemptions on bookings and monthly claims (issue #18)."""
