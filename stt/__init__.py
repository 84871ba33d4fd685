"""Shared building blocks of the speech-to-text service: settings, audio, results, errors, models."""
