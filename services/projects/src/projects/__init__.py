"""Gala projects service: event projects from won opportunities, their tasks, the client portal."""
