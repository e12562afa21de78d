"""Where components come from: local files (and, later, registries)."""
