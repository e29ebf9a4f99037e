"""The offline profile's sticker art: OpenMoji emoji art composed into mood stickers (OFFLINE_STICKERS.md)."""
