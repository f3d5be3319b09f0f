"""The people directory: a venue's staff and clients, their roles, and who may do what.

``domain`` (the User aggregate and its rules), ``repository`` (the store), ``service``
(use cases), ``schemas`` and ``api`` (HTTP). Events: ``gala.contracts.contacts``.
"""
