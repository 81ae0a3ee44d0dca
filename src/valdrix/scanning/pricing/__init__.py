"""The shipped, dated list-price catalog."""
