"""Engines behind one interface each: ASR engines (one module per engine) and, under ``diarization``,
speaker diarizers. The factory picks one for a registry entry."""
