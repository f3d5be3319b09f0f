"""Gala billing service: payment schedules, reminders, payments, and contracts to sign."""
