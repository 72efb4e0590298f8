"""Dataset formats and synthetic dyadic conversations."""
