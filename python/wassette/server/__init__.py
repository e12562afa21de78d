"""MCP protocol layer: one server object for every transport."""
