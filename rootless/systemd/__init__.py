"""systemd integration: sd_notify, unit generation, and ``.container`` files."""
