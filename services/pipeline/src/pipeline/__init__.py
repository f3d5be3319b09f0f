"""Gala pipeline service: opportunities through per-venue stages, rooms without double bookings."""
