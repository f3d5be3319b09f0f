"""Gala contacts service: leads, their heat, and the people directory (staff, clients)."""
