"""Published event payloads: the public contract of Gala's topics.

One module per publishing service (``contracts/<service>.py``), one pydantic class per
event type and version. Other services and integration partners import these classes
to read what a service publishes; a change to a class is additive (a new optional
field), anything else is a new class with a new version (``...v2``).

Every class here names its CloudEvents ``type`` and its topic; the envelope around it
carries the aggregate id as ``subject`` and the venue as the ``venueid`` extension.
"""
