"""Containers made from images: planning a run from an image config, and their lifecycle."""
