"""A contact's history across services, built from the events that concern it."""
