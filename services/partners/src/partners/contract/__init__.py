"""The published event contract, served: the committed AsyncAPI document and its page."""
