"""Gala chat service: each project's live conversation between the venue's team and the client."""
