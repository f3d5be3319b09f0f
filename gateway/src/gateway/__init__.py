"""Gala gateway: the one door for frontends."""
