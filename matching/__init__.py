"""Domain package (matching). Never imports marketplace."""
