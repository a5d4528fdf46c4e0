"""The Cloud API simulator ("Meta in a box") for development, demos and tests."""
