"""Scheduled work: digests and incident reminders on APScheduler, one leader among replicas."""
