"""Contacts imported from a CSV file as a job: staged upload, worker batches, progress."""
