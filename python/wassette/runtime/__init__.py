"""Lifecycle, tool catalog, component store, configuration."""
