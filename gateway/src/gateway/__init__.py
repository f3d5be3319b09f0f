"""Gala gateway: the one door for frontends.

It authenticates callers (Clerk-compatible RS256 session tokens), resolves their role and
venue from the contacts service, forwards a signed internal identity to the service that
owns the route, proxies the chat WebSocket, protects the edge (rate limits, body limits,
CORS, security headers) and serves one OpenAPI document merged from every service.
"""
