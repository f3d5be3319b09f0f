"""The venue event log: every published event of a venue, once, in a replayable order."""
