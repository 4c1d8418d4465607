"""Helpers shared by test folders: real speech assembled from ../shared/audio, encoded as customers send it."""
