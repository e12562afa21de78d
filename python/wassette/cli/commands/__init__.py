"""One module per top-level command; each has `add(sub, parents)`."""
