"""The web console: server-rendered pages over the runtime (components,
audit log, denials to grant, agents' grant requests, pending shipped
policies). Mounted by `wassette serve --console` (server/http/console_mount.py)
and served alone by `wassette console` (standalone.py)."""
