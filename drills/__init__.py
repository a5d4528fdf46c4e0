"""Failure drills: scripted outages that count what was accepted, delivered, lost and duplicated."""
