"""Lead intake: website forms with a venue's public key, and Meta lead-ads webhooks."""
