"""Leads: a venue's contacts, their lifecycle, and their heat."""
