"""The console adapter: the bot's use cases in a terminal (`pmg chat`), for the offline demo and tests."""
