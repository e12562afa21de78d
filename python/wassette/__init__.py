"""Wassette for Python: a secure MCP server for WebAssembly Component tools."""

__version__ = "0.1.0"
