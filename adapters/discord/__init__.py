"""The Discord adapter (discord.py 2.7): slash commands, buttons and messages in, replies out, over the shared use cases."""
