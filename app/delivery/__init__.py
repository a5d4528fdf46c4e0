"""Outbound delivery: message records, statuses and their stores."""
