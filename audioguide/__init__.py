"""audioguide: voice-guided practice sessions rendered offline to tagged MP3s."""

__version__ = "0.1.0"
