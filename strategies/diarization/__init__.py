"""Speaker diarization engines: who spoke when, as speaker turns."""
