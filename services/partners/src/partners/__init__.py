"""Gala partners service: partner apps and their keys, signed webhooks with a delivery log
and replay, and each venue's event log (a sixth service beside the design card's five)."""
