-- Integrated loudness (EBU R128) in LUFS, measured when the track is first encoded; NULL
-- until then, and for silence.
ALTER TABLE tracks ADD COLUMN loudness_lufs REAL;
