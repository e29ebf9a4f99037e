"""Platform edges: Telegram, Discord, console, and the SQLite behavior store."""
