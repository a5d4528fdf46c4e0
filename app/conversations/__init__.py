"""Conversations: what the customer said, and what the gateway answers."""
