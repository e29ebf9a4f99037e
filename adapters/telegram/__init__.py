"""The Telegram adapter (python-telegram-bot 22): updates in, replies out, over the shared use cases."""
