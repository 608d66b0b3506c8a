"""Domain package (payments). Never imports marketplace."""
