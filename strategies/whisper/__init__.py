"""What the Whisper engines share: the judge of a decoding (Whisper's safeguards), and for the torch-based engines
the pieces of Whisper's decoder run by hand (prompt, probe, sampling, scoring, alignment)."""
