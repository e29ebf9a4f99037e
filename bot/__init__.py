"""Composition root and platform-neutral use cases of the sticker bot."""
