"""Partner apps: a venue's integrations and their secret API keys (``gala_pk_...``)."""
